// Native baseline for scripts/bench.mjs: Deno.serve running the hello app on 127.0.0.1:PORT.
//   deno run --allow-net [--unstable-net] deno-serve.ts PORT [reuse-port]
// With `reuse-port` (Deno 2 needs --unstable-net) the socket is opened with SO_REUSEPORT, so that the bench
// can start two of these processes on one port and let the kernel spread connections between them.
import app from '../bench-app.ts';

const [port, mode] = Deno.args;
const server = Deno.serve(
  { port: Number(port), hostname: '127.0.0.1', reusePort: mode === 'reuse-port', onListen: () => {} },
  app.fetch,
);
Deno.addSignalListener('SIGTERM', () => server.shutdown().then(() => Deno.exit(0)));
