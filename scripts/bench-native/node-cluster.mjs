// Native 2-process baseline for scripts/bench.mjs: node:cluster forks WORKERS copies of node-http.mjs
// that share 127.0.0.1:PORT (the primary accepts and hands connections round-robin, Node's default on Linux).
//   node node-cluster.mjs PORT [WORKERS=2]
// SIGTERM to the primary stops the workers, then the primary.
import cluster from 'node:cluster';

const [port, workers = '2'] = process.argv.slice(2);
cluster.setupPrimary({ exec: new URL('./node-http.mjs', import.meta.url).pathname, args: [port] });
for (let i = 0; i < Number(workers); i++) cluster.fork();
process.on('SIGTERM', () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  cluster.disconnect(() => process.exit(0));
});
