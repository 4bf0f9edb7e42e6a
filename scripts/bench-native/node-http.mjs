// Native baseline for scripts/bench.mjs: a node:http server answering "Hello, World!" (raw writeHead/end).
//   node node-http.mjs PORT     (or PORT=n in the environment)
// Binds 127.0.0.1:PORT. Also the app that node-cluster.mjs runs in each worker and PM2 runs in cluster mode.
import http from 'node:http';

// PORT comes from argv, or from the environment under PM2 (whose cluster mode rewrites argv).
const port = Number(process.env.PORT ?? process.argv[2]);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain;charset=UTF-8' });
  res.end('Hello, World!');
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
