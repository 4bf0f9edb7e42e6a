// Baseline for scripts/bench.mjs: a single-process Deno.serve server running the hello app.
// Binds 127.0.0.1 on a kernel-chosen port and prints `PORT=<n>` on stdout once listening.
import app from '../bench-app.ts';

const server = Deno.serve(
  { port: 0, hostname: '127.0.0.1', onListen: ({ port }) => console.log(`PORT=${port}`) },
  app.fetch,
);
Deno.addSignalListener('SIGTERM', () => server.shutdown().then(() => Deno.exit(0)));
