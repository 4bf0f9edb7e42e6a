// Throughput report: tsgunicorn (-w 1, -w 2) against each runtime's native single-process server.
//
//   node scripts/bench.mjs
//
// Env: BENCH_SECONDS (default 5) per measurement, each after a 1 s warm-up;
//      BENCH_RUNTIMES (default node,deno,bun); BENCH_OUT=path also writes the Markdown report there.
// Load generator: wrk if on PATH, else autocannon if installed (npx --no-install), else a hint and exit 0.
// The Markdown report goes to stdout, progress to stderr. Every server binds and is loaded on 127.0.0.1
// only, and is stopped by pid (SIGTERM, then SIGKILL after 5 s), whatever happens.
// This is a report, not a test: nothing here asserts on timings.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const APP = path.join(ROOT, 'scripts', 'bench-app.ts');
const NATIVE = path.join(ROOT, 'scripts', 'bench-native');
const HOST = '127.0.0.1';
const CONNECTIONS = 32;
const WARMUP_SECONDS = 1;
const SECONDS = positiveInt(process.env.BENCH_SECONDS, 5);
const RUNTIMES = (process.env.BENCH_RUNTIMES || 'node,deno,bun').split(',').map((s) => s.trim()).filter(Boolean);
const STARTUP_TIMEOUT_MS = 15_000;
const KILL_GRACE_MS = 5_000;

/** Servers still running, so that a signal or crash can stop them too. */
const live = new Set();
/** Load-generator processes still running (stopped with the servers on a signal). */
const tools = new Set();

/** Parses a positive integer env value, falling back to `fallback`. */
function positiveInt(text, fallback) {
  const n = Number.parseInt(text ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** Progress messages go to stderr so that stdout is only the report. */
function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The path of an executable named `name` on PATH, or null. */
function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** Runs a short command synchronously (bounded), returning trimmed stdout or null on failure. */
function capture(cmd, args, timeoutMs = 20_000) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The project-local binary in node_modules/.bin, else one on PATH. */
function localBin(name) {
  const local = path.join(ROOT, 'node_modules', '.bin', name);
  return fs.existsSync(local) ? local : onPath(name);
}

/**
 * How to run each runtime: its binary, version, and the commands for the native baseline and for
 * tsgunicorn with `workers` workers. A runtime whose binary is missing is reported and skipped.
 */
function describeRuntime(name) {
  const bind = ['-b', `${HOST}:0`];
  if (name === 'node') {
    return {
      name, bin: process.execPath, version: process.version.replace(/^v/, ''),
      native: [path.join(NATIVE, 'node-http.mjs')], nativeLabel: 'node:http',
      tsgunicorn: (w) => [path.join(ROOT, 'dist', 'cli.js'), '-w', String(w), ...bind, APP],
    };
  }
  if (name === 'deno') {
    const bin = localBin('deno');
    const version = bin && capture(bin, ['--version'])?.match(/deno (\S+)/)?.[1];
    return version && {
      name, bin, version,
      native: ['run', '--allow-net', path.join(NATIVE, 'deno-serve.ts')],
      nativeLabel: 'Deno.serve',
      tsgunicorn: (w) => ['run', '-A', path.join(ROOT, 'cli.ts'), '-w', String(w), ...bind, APP],
    };
  }
  if (name === 'bun') {
    const bin = localBin('bun');
    const version = bin && capture(bin, ['--version']);
    return version && {
      name, bin, version,
      native: [path.join(NATIVE, 'bun-serve.ts')], nativeLabel: 'Bun.serve',
      tsgunicorn: (w) => [path.join(ROOT, 'cli.ts'), '-w', String(w), ...bind, APP],
    };
  }
  return null;
}

/** The environment for servers: ours, minus variables that would change tsgunicorn's binding or workers. */
function serverEnv() {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('TSGUNICORN_') || key === 'PORT' || key === 'WEB_CONCURRENCY') delete env[key];
  }
  return env;
}

// ---------------------------------------------------------------------------------------------------
// Processes: start, find the port, measure RSS, stop.

/** Identifies a process instance: its pid plus its start time, so a reused pid is never signalled. */
function startTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null; // field 22: starttime
  } catch {
    return null;
  }
}

/** Direct children of `pid`, from /proc/PID/task/*\/children, or `ps --ppid` where that file is missing. */
function childrenOf(pid) {
  const kids = new Set();
  let readProc = false;
  try {
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
      readProc = true;
      for (const id of text.split(/\s+/)) if (id) kids.add(Number(id));
    }
  } catch {
    // the process is gone, or the kernel lacks CONFIG_PROC_CHILDREN
  }
  if (!readProc) {
    const out = capture('ps', ['--ppid', String(pid), '-o', 'pid='], 5_000) ?? '';
    for (const id of out.split(/\s+/)) if (id) kids.add(Number(id));
  }
  return [...kids];
}

/** `pid` and all its descendants (master, workers, and any helpers they started). */
function processTree(pid) {
  const seen = [];
  const queue = [pid];
  while (queue.length > 0 && seen.length < 1000) {
    const next = queue.shift();
    if (seen.includes(next)) continue;
    seen.push(next);
    queue.push(...childrenOf(next));
  }
  return seen;
}

/** VmRSS of one process in KiB (0 when it has gone). */
function rssKiB(pid) {
  try {
    const match = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Total RSS of a server's process tree, in MiB, and how many processes it counted. */
function treeRss(pid) {
  const pids = processTree(pid);
  const kib = pids.reduce((sum, p) => sum + rssKiB(p), 0);
  return { mib: kib / 1024, processes: pids.length };
}

/**
 * Starts a server and waits (bounded) until `readyLine` has matched its output and `extraReady` holds.
 * `readyLine` must capture the port. Returns { child, port, output() }; the child is in `live`.
 */
async function startServer(label, bin, args, { readyLine, stream, extraReady = () => true }) {
  const child = spawn(bin, args, { cwd: ROOT, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { label, child, port: null, tree: [], text: { stdout: '', stderr: '' } };
  live.add(server);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  server.exited = exited;
  child.once('error', (err) => { server.spawnError = err; });
  // Keep draining both pipes for the whole run (a full pipe would block the server), keeping a bounded tail.
  for (const name of ['stdout', 'stderr']) {
    child[name].setEncoding('utf8');
    child[name].on('data', (chunk) => { server.text[name] = (server.text[name] + chunk).slice(-64_000); });
  }
  server.output = () => `${server.text.stderr}${server.text.stdout}`.trim().split('\n').slice(-15).join('\n');

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let done = false;
  exited.then(() => { done = true; });
  while (Date.now() < deadline) {
    if (server.spawnError) throw new Error(`${label}: cannot start ${bin}: ${server.spawnError.message}`);
    if (done) throw new Error(`${label}: exited before it was ready:\n${server.output()}`);
    const match = server.port === null && server.text[stream].match(readyLine);
    if (match) server.port = Number(match[1]);
    if (server.port !== null && extraReady(server.text[stream])) {
      await waitForHttp(server, deadline);
      return server;
    }
    await sleep(50);
  }
  throw new Error(`${label}: not ready within ${STARTUP_TIMEOUT_MS / 1000} s:\n${server.output()}`);
}

/** Waits (until `deadline`) for a 200 from the server's loopback URL. */
async function waitForHttp(server, deadline) {
  let lastError = null;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${HOST}:${server.port}/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      lastError = new Error(`HTTP ${res.status}`);
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(`${server.label}: no HTTP 200 on port ${server.port}: ${lastError?.message}`);
}

/**
 * Stops a server: SIGTERM to its pid, SIGKILL after 5 s; then SIGKILL any process of its tree
 * (as last recorded, same pid and start time) that outlived it.
 */
async function stopServer(server) {
  const { child } = server;
  const tree = processTree(child.pid).filter((p) => p !== child.pid).map((p) => [p, startTime(p)]);
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    child.kill('SIGTERM');
    const stopped = await Promise.race([server.exited.then(() => true), sleep(KILL_GRACE_MS).then(() => false)]);
    if (!stopped) {
      log(`${server.label}: still running ${KILL_GRACE_MS / 1000} s after SIGTERM; sending SIGKILL`);
      child.kill('SIGKILL');
      await Promise.race([server.exited, sleep(KILL_GRACE_MS)]);
    }
  }
  // Workers normally exit with their master; give them a moment, then kill leftovers by pid.
  const leftoverDeadline = Date.now() + KILL_GRACE_MS;
  let leftovers = tree.filter(([p, t]) => t !== null && startTime(p) === t);
  while (leftovers.length > 0 && Date.now() < leftoverDeadline) {
    await sleep(100);
    leftovers = leftovers.filter(([p, t]) => startTime(p) === t);
  }
  for (const [p] of leftovers) {
    log(`${server.label}: pid ${p} outlived its master; sending SIGKILL`);
    try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ }
  }
  live.delete(server);
}

/** Stops every server and load generator still running (used on signals and fatal errors). */
async function stopAll() {
  for (const child of tools) child.kill('SIGTERM');
  await Promise.all([...live].map((server) => stopServer(server).catch(() => {})));
}

// ---------------------------------------------------------------------------------------------------
// Load generators.

/** Converts a wrk duration ("812.00us", "1.20ms", "2.01s", "1.5m") to milliseconds. */
function wrkMs(text) {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!match) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2]];
  return Number(match[1]) * scale;
}

/** Runs a bounded command, resolving to its stdout; rejects on a non-zero exit or timeout. */
function run(cmd, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    tools.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c) => { out += c; });
    child.stderr.setEncoding('utf8').on('data', (c) => { err += c; });
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    }, timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); tools.delete(child); reject(e); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      tools.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? code}): ${(err || out).trim().slice(-500)}`));
    });
  });
}

/** The wrk load generator: requests/s, p50 and average latency in ms. */
function wrkGenerator(bin) {
  // `wrk -v` prints "wrk <version> [epoll] ..." and exits 1, so read stdout whatever the status.
  const banner = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5_000 }).stdout ?? '';
  const version = banner.match(/^wrk (\S+)/)?.[1] ?? '?';
  return {
    name: 'wrk',
    describe: `wrk ${version} -t1 -c${CONNECTIONS}`,
    async measure(port, seconds) {
      const url = `http://${HOST}:${port}/`;
      const out = await run(bin, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url], (seconds + 15) * 1000);
      const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
      const avg = wrkMs(out.match(/^\s+Latency\s+(\S+)/m)?.[1] ?? '');
      const p50 = wrkMs(out.match(/^\s+50%\s+(\S+)/m)?.[1] ?? '');
      const errors = out.match(/Non-2xx or 3xx responses: (\d+)|Socket errors: .*/)?.[0];
      if (!Number.isFinite(rps)) throw new Error(`cannot parse wrk output:\n${out}`);
      return { rps, p50, avg, errors };
    },
  };
}

/** The autocannon load generator (through npx --no-install): requests/s, p50 and average latency in ms. */
function autocannonGenerator() {
  return {
    name: 'autocannon',
    describe: `autocannon -c${CONNECTIONS}`,
    async measure(port, seconds) {
      const url = `http://${HOST}:${port}/`;
      const out = await run('npx', ['--no-install', 'autocannon', '-j', '-c', String(CONNECTIONS), '-d', String(seconds), url],
        (seconds + 30) * 1000);
      const result = JSON.parse(out.slice(out.indexOf('{')));
      const bad = (result.non2xx ?? 0) + (result.errors ?? 0);
      return {
        rps: result.requests.average,
        p50: result.latency.p50,
        avg: result.latency.average,
        errors: bad > 0 ? `${bad} errors/non-2xx` : undefined,
      };
    },
  };
}

/** wrk if on PATH, else autocannon if npx can run it without installing, else null. */
function findLoadGenerator() {
  const wrk = onPath('wrk');
  if (wrk) return wrkGenerator(wrk);
  if (onPath('npx') && capture('npx', ['--no-install', 'autocannon', '--version'], 30_000) !== null) {
    return autocannonGenerator();
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------
// The benchmark.

/** Rebuilds dist/ so that Node measures the current sources (bounded to 60 s). */
async function buildDist() {
  log('building dist/ (node scripts/build.mjs)');
  await run(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], 60_000);
}

/** Starts one server, warms it up, measures it, records its RSS, and always stops it. */
async function measureCase(gen, c) {
  let server = null;
  try {
    server = await startServer(c.label, c.bin, c.args, c.ready);
    log(`${c.label}: port ${server.port}; warm-up ${WARMUP_SECONDS} s, then ${SECONDS} s`);
    await gen.measure(server.port, WARMUP_SECONDS);
    const result = await gen.measure(server.port, SECONDS);
    const rss = treeRss(server.child.pid);
    return { ...result, rss };
  } finally {
    if (server) await stopServer(server);
  }
}

/** The cases for one runtime: its native server, then tsgunicorn with 1 and 2 workers. */
function casesFor(rt) {
  const native = {
    runtime: rt.name, server: rt.nativeLabel, workers: 1, native: true,
    label: `${rt.name} ${rt.nativeLabel}`, bin: rt.bin, args: rt.native,
    ready: { stream: 'stdout', readyLine: /^PORT=(\d+)$/m },
  };
  const gunicorn = [1, 2].map((w) => ({
    runtime: rt.name, server: 'tsgunicorn', workers: w, native: false,
    label: `${rt.name} tsgunicorn -w ${w}`, bin: rt.bin, args: rt.tsgunicorn(w),
    ready: {
      stream: 'stderr',
      readyLine: /Listening at: http:\/\/127\.0\.0\.1:(\d+)/,
      extraReady: (text) => (text.match(/Booting worker with pid: \d+/g) ?? []).length >= w,
    },
  }));
  return [native, ...gunicorn];
}

const fmt = (n, digits) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The Markdown report: machine info, the table, and any failures. */
function report(gen, versions, rows, failures) {
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
  const lines = [
    `Machine: nproc ${os.availableParallelism()} (${cpu}), ${os.platform()} ${os.release()}; ${versions}`,
    `Date: ${new Date().toISOString()}; load: ${gen.describe}, ${SECONDS} s per row after a ${WARMUP_SECONDS} s warm-up, `
      + `GET http://${HOST}:PORT/ ("Hello, World!")`,
    '',
    '| runtime | server | workers | req/s | ratio vs native | p50/avg latency | RSS MiB total |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const row of rows) {
    const nativeRow = rows.find((r) => r.runtime === row.runtime && r.native && r.result);
    const r = row.result;
    if (!r) {
      lines.push(`| ${row.runtime} | ${row.server} | ${row.workers} | failed | – | – | – |`);
      continue;
    }
    const ratio = nativeRow ? fmt(r.rps / nativeRow.result.rps, 2) : 'n/a';
    const rss = `${fmt(r.rss.mib, 1)} (${r.rss.processes} proc)`;
    const flag = r.errors ? ` ⚠ ${r.errors}` : '';
    lines.push(`| ${row.runtime} | ${row.server} | ${row.workers} | ${fmt(r.rps, 0)}${flag} | ${ratio} `
      + `| ${fmt(r.p50, 2)} / ${fmt(r.avg, 2)} ms | ${rss} |`);
  }
  lines.push('', 'RSS: VmRSS summed over the server\'s whole process tree (master, workers and any helper '
    + 'processes they started), read right after the measurement.');
  if (failures.length > 0) {
    lines.push('', 'Failures:', '');
    for (const f of failures) lines.push(`- ${f.label}: ${f.message.split('\n').join('\n  ')}`);
  }
  return `${lines.join('\n')}\n`;
}

async function main() {
  const gen = findLoadGenerator();
  if (!gen) {
    console.log('No load generator found: install wrk (e.g. `apt-get install wrk`) or autocannon '
      + '(`npm install --no-save autocannon`), then run `node scripts/bench.mjs` again.');
    return;
  }
  const runtimes = [];
  const failures = [];
  for (const name of RUNTIMES) {
    const rt = describeRuntime(name);
    if (rt) runtimes.push(rt);
    else failures.push({ label: name, message: 'runtime not available (unknown name, or binary not found), skipped' });
  }
  for (const file of ['tsgunicorn.config.ts', 'tsgunicorn.config.js', 'tsgunicorn.config.json']) {
    if (fs.existsSync(path.join(ROOT, file))) log(`warning: ${file} in ${ROOT} applies to every tsgunicorn run`);
  }
  if (runtimes.some((rt) => rt.name === 'node')) {
    try {
      await buildDist();
    } catch (err) {
      failures.push({ label: 'node build', message: err.message });
    }
  }
  log(`load generator: ${gen.describe}; runtimes: ${runtimes.map((rt) => rt.name).join(', ') || 'none'}`);

  const rows = [];
  for (const rt of runtimes) {
    for (const c of casesFor(rt)) {
      const row = { runtime: c.runtime, server: c.server, workers: c.workers, native: c.native, result: null };
      rows.push(row);
      try {
        row.result = await measureCase(gen, c);
        log(`${c.label}: ${fmt(row.result.rps, 0)} req/s, RSS ${fmt(row.result.rss.mib, 1)} MiB`);
      } catch (err) {
        log(`${c.label}: FAILED: ${err.message}`);
        failures.push({ label: c.label, message: err.message });
      }
    }
  }

  const versions = ['node', 'deno', 'bun']
    .map((name) => `${name} ${(runtimes.find((rt) => rt.name === name) ?? describeRuntime(name))?.version ?? 'not found'}`)
    .join(', ');
  const markdown = report(gen, versions, rows, failures);
  process.stdout.write(markdown);
  if (process.env.BENCH_OUT) {
    fs.writeFileSync(path.resolve(process.env.BENCH_OUT), markdown);
    log(`wrote ${path.resolve(process.env.BENCH_OUT)}`);
  }
}

// Ctrl-C or a kill of the benchmark still stops every server it started.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    log(`${signal}: stopping servers`);
    stopAll().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  log(`error: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
