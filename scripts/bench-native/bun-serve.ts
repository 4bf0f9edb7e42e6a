// Baseline for scripts/bench.mjs: a single-process Bun.serve server running the hello app.
// Binds 127.0.0.1 on a kernel-chosen port and prints `PORT=<n>` on stdout once listening.
import app from '../bench-app.ts';

const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: app.fetch });
console.log(`PORT=${server.port}`);
process.on('SIGTERM', () => server.stop(true).then(() => process.exit(0)));
