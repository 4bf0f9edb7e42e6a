// Native baseline for scripts/bench.mjs: Bun.serve running the hello app on 127.0.0.1:PORT.
//   bun bun-serve.ts PORT [reuse-port]
// With `reuse-port` the socket is opened with SO_REUSEPORT, so that the bench can start two of these
// processes on one port and let the kernel spread connections between them.
import app from '../bench-app.ts';

const [port, mode] = process.argv.slice(2);
const server = Bun.serve({
  port: Number(port),
  hostname: '127.0.0.1',
  reusePort: mode === 'reuse-port',
  fetch: app.fetch,
});
process.on('SIGTERM', () => server.stop(true).then(() => process.exit(0)));
