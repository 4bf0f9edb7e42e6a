// Native baseline for scripts/bench.mjs: Bun.serve running the hello app on 127.0.0.1:PORT.
//   bun bun-serve.ts PORT [reuse-port|reads]
// With `reuse-port` the socket is opened with SO_REUSEPORT, so that the bench can start two of these
// processes on one port and let the kernel spread connections between them. With `reads` the server also reads
// what tsgunicorn's HTTP layer must read of every request and response on Bun.serve to apply its checks (the
// URL, the fields through `toJSON()`, the response's fields) and nothing else: the floor of the layer's cost.
import app from '../bench-app.ts';

const [port, mode] = process.argv.slice(2);

/** The app, with the reads the HTTP layer's checks need and none of the checks. */
function withReads(request: Request): Response {
  void request.url;
  (request.headers as unknown as { toJSON(): unknown }).toJSON();
  const response = app.fetch();
  void response.headers;
  return response;
}

const server = Bun.serve({
  port: Number(port),
  hostname: '127.0.0.1',
  reusePort: mode === 'reuse-port',
  fetch: mode === 'reads' ? withReads : app.fetch,
});
process.on('SIGTERM', () => server.stop(true).then(() => process.exit(0)));
