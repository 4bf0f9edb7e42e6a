// Baseline for scripts/bench.mjs: a single-process node:http server answering "Hello, World!".
// Binds 127.0.0.1 on a kernel-chosen port and prints `PORT=<n>` on stdout once listening.
import http from 'node:http';

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain;charset=UTF-8' });
  res.end('Hello, World!');
});
server.listen(0, '127.0.0.1', () => console.log(`PORT=${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
