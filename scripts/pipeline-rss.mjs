// Measures what clients that pipeline GETs and never read the answers cost a worker:
//   node scripts/pipeline-rss.mjs RUNTIME MODE [REQUESTS [PATH [CONNECTIONS [TSGUNICORN-ARGS…]]]]
// RUNTIME node|deno|bun, MODE inherit|reuse-port; PATH / answers `ok`, /big 64 KiB (test/fixtures/timeouts-app.ts).
// Starts tsgunicorn with one worker, reads the worker's RSS from /proc, opens CONNECTIONS (default 1) raw
// connections that each write REQUESTS (default 50,000) `GET PATH` and read nothing (READ=1: they read and
// discard), waits until the RSS settles (at most 10 s), reads it again, asks how many requests reached the handler
// and whether the worker was replaced (a missed heartbeat), and kills everything it started by pid.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, sleep } from './_proc-and-runtimes.mjs';

const [runtime = 'node', mode = 'inherit', count = '50000', target = '/', connections = '1', ...extra] = process.argv.slice(2);
const BIN = path.join(ROOT, 'node_modules', '.bin');
const cli = runtime === 'node' ? [process.execPath, path.join(ROOT, 'dist/tsgunicorn.js')]
  : runtime === 'deno' ? [path.join(BIN, 'deno'), 'run', '-A', path.join(ROOT, 'cli.ts')]
  : [path.join(BIN, 'bun'), path.join(ROOT, 'cli.ts')];
const args = [...cli.slice(1), mode === 'reuse-port' ? '--reuse-port' : '--no-reuse-port', '-b', '127.0.0.1:0',
  '--log-level', 'debug', ...extra, path.join(ROOT, 'test/fixtures/timeouts-app.ts')];
const master = spawn(cli[0], args, { stdio: ['ignore', 'pipe', 'pipe'] });
let log = '';
master.stdout.on('data', (d) => (log += d));
master.stderr.on('data', (d) => (log += d));
const workerPids = () => [...log.matchAll(/Booting worker with pid: (\d+)/g)].map((m) => Number(m[1]));
const rssMiB = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return 0;
  }
};
const sockets = [];
const killAll = () => {
  for (const socket of sockets) socket.destroy();
  for (const pid of new Set([master.pid, ...workerPids()])) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
};
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

try {
  for (let i = 0; i < 200 && !/is ready/.test(log); i++) await sleep(100);
  const port = Number(/Listening at: http:\/\/127\.0\.0\.1:(\d+)/.exec(log)[1]);
  const [worker] = workerPids();
  const before = rssMiB(worker);
  const requests = Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(Number(count)));
  for (let i = 0; i < Number(connections); i++) {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    if (process.env.READ) socket.resume();
    else socket.pause();
    socket.write(requests);
    sockets.push(socket);
  }
  let peak = before;
  let last = before;
  for (let i = 0, still = 0; i < 50 && still < 5; i++) {
    await sleep(200);
    const rss = rssMiB(worker);
    still = Math.abs(rss - last) < 1 ? still + 1 : 0;
    last = rss;
    peak = Math.max(peak, rss);
  }
  const alive = fs.existsSync(`/proc/${worker}`);
  const seen = alive
    ? await fetch(`http://127.0.0.1:${port}/count`, { signal: AbortSignal.timeout(10000) }).then((r) => r.text(), (e) => e.message)
    : '-';
  console.log(`${runtime} ${mode}, ${connections} × ${count} GET ${target}: worker RSS ${before.toFixed(0)} MiB -> ` +
    `peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)}), worker alive ${alive}, ` +
    `workers booted ${workerPids().length}, handler ${seen}`);
} finally {
  killAll();
}
