// Speed report: tsgunicorn against each runtime's native server (1 and 2 processes) and the peers a user
// would pick instead, on one hello-world handler, in one run.
//
//   node scripts/bench.mjs            (npm run bench)
//   node scripts/bench.mjs --quick    (BENCH_SECONDS=1 BENCH_ROUNDS=1: about 2 minutes, to try it)
//
// Env: BENCH_SECONDS (default 3): turns of 1 s per measurement, after a 1 s warm-up; BENCH_ROUNDS (default 3):
//      every case runs once per round, rounds alternate over all cases and each figure is the median over rounds;
//      the rows of a pair (tsgunicorn --reuse-port against the native server, the access log against the row
//      without it, this checkout against BENCH_BASELINE's) are up together and measured in turns, and the report's
//      paired table gives the median of their per-round ratios; BENCH_RUNTIMES (default node,deno,bun);
//      BENCH_CASES: a regexp (case-insensitive), only rows whose label matches run (ratios need the native rows
//      too; a pair needs both its rows); BENCH_OUT=path also writes the Markdown report there;
//      BENCH_BASELINE=DIR: another tsgunicorn checkout (e.g. `git worktree add DIR <commit>`, with node_modules)
//      whose tsgunicorn rows run beside this one's in the same rounds, each paired with this one's.
// Peers (@hono/node-server, srvx, PM2) are not dependencies: they are installed on demand, each into its own
// folder under node_modules/.cache/tsgunicorn-bench/; a failed install skips its rows.
// The Markdown report goes to stdout, progress to stderr. Every server binds and is loaded on 127.0.0.1 only,
// is stopped by pid (SIGTERM, then SIGKILL after 5 s) with every process of its tree, whatever happens;
// wrk and npm are bounded by timeouts. This is a report, not a test: nothing here asserts on timings.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  ROOT, capture, childrenOf, describeRuntime, nodeHasReusePort, onPath, progressLog, runMain, sleep, startTime,
  statFields,
} from './_proc-and-runtimes.mjs';

const APP = path.join(ROOT, 'scripts', 'bench-app.ts');
const HONO_APP = path.join(ROOT, 'examples', 'hono-app.ts');
const NATIVE = path.join(ROOT, 'scripts', 'bench-native');
const PEER_SCRIPTS = path.join(ROOT, 'scripts', 'bench-peers');
const PEER_CACHE = path.join(ROOT, 'node_modules', '.cache', 'tsgunicorn-bench');
const EXECUTABLES = path.join(PEER_CACHE, 'executables');
const HOST = '127.0.0.1';
const CONNECTIONS = 32;
const WARMUP_SECONDS = 1;
const QUICK = process.argv.includes('--quick');
const SECONDS = positiveInt(process.env.BENCH_SECONDS, QUICK ? 1 : 3);
const ROUNDS = positiveInt(process.env.BENCH_ROUNDS, QUICK ? 1 : 3);
const RUNTIMES = (process.env.BENCH_RUNTIMES || 'node,deno,bun').split(',').map((s) => s.trim()).filter(Boolean);
const CASE_FILTER = process.env.BENCH_CASES ? new RegExp(process.env.BENCH_CASES, 'i') : null;
const BASELINE = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : null;
/** The baseline checkout's commit, as its rows name it. */
const BASELINE_TAG = BASELINE && `@${capture('git', ['-C', BASELINE, 'rev-parse', '--short', 'HEAD']) ?? path.basename(BASELINE)}`;
const STARTUP_TIMEOUT_MS = 20_000;
const STARTUP_POLL_MS = 20;
const KILL_GRACE_MS = 5_000;
const INSTALL_TIMEOUT_MS = 180_000;

/** Server instances still running, so that a signal or crash can stop them too. */
const live = new Set();
/** Load-generator and installer processes still running (stopped with the servers on a signal). */
const tools = new Set();

/** Parses a positive integer env value, falling back to `fallback`. */
function positiveInt(text, fallback) {
  const n = Number.parseInt(text ?? '', 10);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** Progress messages go to stderr so that stdout is only the report. */
const log = progressLog('bench');

/** Clock ticks per second, the unit of utime and stime in /proc/PID/stat. */
const CLK_TCK = Number(capture('getconf', ['CLK_TCK'])) || 100;

/** The first line of `text` that names an error (else its last line), cut to its first sentence if long. */
function oneLine(text) {
  const lines = String(text).split('\n').map((l) => l.trim()).filter(Boolean);
  const found = lines.find((l) => /error|unknown|cannot|not supported|unsupported/i.test(l)) ?? lines.at(-1) ?? '?';
  const line = found.length > 100 ? found.split(/(?<=\.)\s/)[0] : found;
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

// ---------------------------------------------------------------------------------------------------
// The servers' environment.

/** The environment for servers: ours, minus variables that would change a server's binding or workers. */
function serverEnv(extra = {}) {
  const env = { ...process.env, DENO_NO_UPDATE_CHECK: '1' };
  for (const key of Object.keys(env)) {
    const owned = key.startsWith('TSGUNICORN_') || key.startsWith('PM2_');
    if (owned || ['PORT', 'WEB_CONCURRENCY', 'DENO_JOBS'].includes(key)) delete env[key];
  }
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------------
// Peers: installed on demand into the bench's own cache, one folder per peer.

/** The peers: npm packages, the script copied next to them, and the runtimes they run on. */
const PEERS = {
  honoNode: {
    dir: 'hono-node-server', packages: ['@hono/node-server', 'hono'], script: path.join(PEER_SCRIPTS, 'hono-node-server.mjs'),
  },
  srvx: { dir: 'srvx', packages: ['srvx'], script: path.join(PEER_SCRIPTS, 'srvx.mjs') },
  pm2: { dir: 'pm2', packages: ['pm2'], script: path.join(NATIVE, 'node-http.mjs') },
};

/** The folder a peer is installed in. */
function peerDir(peer) {
  return path.join(PEER_CACHE, peer.dir);
}

/** The installed version of a peer's first package, or null when it is not installed. */
function peerVersion(peer) {
  try {
    const manifest = path.join(peerDir(peer), 'node_modules', peer.packages[0], 'package.json');
    return JSON.parse(fs.readFileSync(manifest, 'utf8')).version;
  } catch {
    return null;
  }
}

/**
 * Installs a peer into its cache folder unless it is there already (npm, bounded), and copies its script next
 * to its node_modules so that the script's imports resolve there on every runtime. Returns the version.
 */
async function ensurePeer(peer) {
  const dir = peerDir(peer);
  if (!peerVersion(peer)) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
    log(`installing ${peer.packages.join(' ')} into ${path.relative(ROOT, dir)}`);
    const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
    await run('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', ...peer.packages],
      INSTALL_TIMEOUT_MS, npmEnv);
  }
  fs.copyFileSync(peer.script, path.join(dir, path.basename(peer.script)));
  const version = peerVersion(peer);
  if (!version) throw new Error(`npm install finished but ${peer.packages[0]} is missing`);
  return version;
}

/**
 * Installs every peer the selected cases need. A peer that fails is logged and its cases are marked skipped
 * with the reason. Returns "name version" strings for the report.
 */
async function preparePeers(cases) {
  const versions = [];
  for (const peer of new Set(cases.filter((c) => c.peer && !c.skip).map((c) => c.peer))) {
    try {
      versions.push(`${peer.packages[0]} ${await ensurePeer(peer)}`);
    } catch (err) {
      const reason = `not installed: ${oneLine(err.message)}`;
      log(`${peer.packages[0]}: ${reason}; skipping its rows`);
      for (const c of cases) if (c.peer === peer) c.skip = reason;
    }
  }
  return versions;
}

/**
 * Builds the executables that executable cases run (`tsgunicorn build examples/hono-app.ts --target RUNTIME`,
 * alone in their folder); a failed build skips its row. Returns "bun 104.3 MiB"-style sizes for the report.
 */
async function prepareExecutables(cases) {
  const sizes = [];
  for (const c of cases.filter((x) => x.executable && !x.skip)) {
    const { target, file } = c.executable;
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    log(`building the ${target} executable (tsgunicorn build --target ${target})`);
    try {
      const env = { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}` };
      await run(process.execPath, [path.join(ROOT, 'dist', 'tsgunicorn.js'), 'build', HONO_APP, '-o', file, '--target', target], 180_000, env);
      sizes.push(`${target} ${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB`);
    } catch (err) {
      c.skip = `not built: ${oneLine(err.message)}`;
      log(`${target} executable: ${c.skip}; skipping its row`);
    }
  }
  return sizes;
}

// ---------------------------------------------------------------------------------------------------
// Processes: /proc readings, start, stop.

/** CPU time a process has used, user plus system (fields 14 and 15), in clock ticks; 0 when it has gone. */
function cpuTicks(pid) {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : 0;
}

/** The given root pids and all their descendants (masters, workers, and any helpers they started). */
function processTree(roots) {
  const seen = [];
  const queue = [...roots];
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

/** Total RSS of a process tree in MiB, and how many processes it counted. */
function treeRss(roots) {
  const pids = processTree(roots).filter((p) => rssKiB(p) > 0);
  return { mib: pids.reduce((sum, p) => sum + rssKiB(p), 0) / 1024, processes: pids.length };
}

/** CPU ticks of every process of a tree, by pid. */
function treeTicks(roots) {
  return new Map(processTree(roots).map((p) => [p, cpuTicks(p)]));
}

/** A free loopback port, chosen by the kernel and released, for a server to bind next. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * A `cat` reading a pipe into /dev/null: the reader of a server's access log on stdout. A log collector is a lean
 * native reader (journald, a container runtime's log driver); a Node stream reading the same pipe costs 0.5-1.2 µs
 * of CPU a line where cat costs 0.14, and on 2 cores the reader's CPU is taken from the server's req/s.
 */
function spawnStdoutDrain() {
  return spawn('cat', [], { stdio: ['pipe', 'ignore', 'ignore'] });
}

/**
 * Spawns one process of a server instance, draining its output into a bounded tail (stdout to a `cat` with
 * `discardStdout`).
 */
function spawnProcess(instance, { bin, args, cwd = ROOT, env = {}, discardStdout = false }) {
  const drain = discardStdout ? spawnStdoutDrain() : null;
  const child = spawn(bin, args, { cwd, env: serverEnv(env), stdio: ['ignore', drain ? drain.stdin : 'pipe', 'pipe'] });
  const proc = { child, exited: new Promise((resolve) => child.once('exit', () => resolve())), error: null };
  child.once('error', (err) => { proc.error = err; });
  if (drain) {
    // The server (and its workers) hold the pipe's write end now: cat ends when the last of them exits.
    drain.stdin.destroy();
    child.once('exit', () => setTimeout(() => drain.kill('SIGKILL'), 10_000).unref());
  }
  for (const name of drain ? ['stderr'] : ['stdout', 'stderr']) {
    child[name].setEncoding('utf8');
    child[name].on('data', (chunk) => { instance.text = (instance.text + chunk).slice(-64_000); });
  }
  instance.procs.push(proc);
  return proc;
}

/** Whether any process of the instance has exited (or failed to spawn). */
function anyExited(instance) {
  return instance.procs.some((p) => p.error || p.child.exitCode !== null || p.child.signalCode !== null);
}

/**
 * Starts a case on `port`: spawns its processes and polls GET / on the port until a 200 (bounded). Returns
 * the running instance (in `live`) with `startupMs`, spawn to first 200. For tsgunicorn it then also waits
 * until every worker has booted, so that the measurement sees all of them.
 */
async function startCase(c, port) {
  const launch = c.launch(port);
  const instance = { label: c.label, procs: [], text: '', cleanup: launch.cleanup, startupMs: NaN };
  live.add(instance);
  const t0 = performance.now();
  for (const command of launch.commands) spawnProcess(instance, command);
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Number.isNaN(instance.startupMs)) {
    if (anyExited(instance)) {
      throw new Error(`exited: ${oneLine(instance.text || instance.procs.find((p) => p.error)?.error?.message)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`no HTTP 200 on port ${port} within ${STARTUP_TIMEOUT_MS / 1000} s: ${oneLine(instance.text)}`);
    }
    if (await answers200(port)) instance.startupMs = performance.now() - t0;
    else await sleep(STARTUP_POLL_MS);
  }
  while (c.workers && (instance.text.match(/Booting worker with pid: \d+/g) ?? []).length < c.workers) {
    if (anyExited(instance) || Date.now() > deadline) {
      throw new Error(`not all ${c.workers} workers booted: ${oneLine(instance.text)}`);
    }
    await sleep(STARTUP_POLL_MS);
  }
  return instance;
}

/** Whether GET http://127.0.0.1:PORT/ answers 200 now (1 s timeout per try). */
async function answers200(port) {
  try {
    const res = await fetch(`http://${HOST}:${port}/`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Stops an instance: SIGTERM to each of its processes, SIGKILL after 5 s; then SIGKILL any process of its
 * tree (as recorded before, same pid and start time) that outlived it; then the case's own cleanup.
 */
async function stopInstance(instance) {
  const roots = instance.procs.map((p) => p.child.pid).filter(Boolean);
  const tree = processTree(roots).filter((p) => !roots.includes(p)).map((p) => [p, startTime(p)]);
  const running = instance.procs.filter((p) => p.child.pid && p.child.exitCode === null && p.child.signalCode === null);
  for (const p of running) p.child.kill('SIGTERM');
  const all = Promise.all(running.map((p) => p.exited));
  if (!(await Promise.race([all.then(() => true), sleep(KILL_GRACE_MS).then(() => false)]))) {
    log(`${instance.label}: still running ${KILL_GRACE_MS / 1000} s after SIGTERM; sending SIGKILL`);
    for (const p of running) p.child.kill('SIGKILL');
    await Promise.race([all, sleep(KILL_GRACE_MS)]);
  }
  await killLeftovers(instance.label, tree);
  await instance.cleanup?.();
  live.delete(instance);
}

/** Gives `[pid, startTime]` processes 5 s to exit with their parent, then SIGKILLs those still there. */
async function killLeftovers(label, tree) {
  const deadline = Date.now() + KILL_GRACE_MS;
  let leftovers = tree.filter(([p, t]) => t !== null && startTime(p) === t);
  while (leftovers.length > 0 && Date.now() < deadline) {
    await sleep(100);
    leftovers = leftovers.filter(([p, t]) => startTime(p) === t);
  }
  for (const [p] of leftovers) {
    log(`${label}: pid ${p} outlived its parent; sending SIGKILL`);
    try { process.kill(p, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/** Stops every server, load generator and installer still running (used on signals and fatal errors). */
async function stopAll() {
  for (const child of tools) child.kill('SIGTERM');
  await Promise.all([...live].map((instance) => stopInstance(instance).catch(() => {})));
}

// ---------------------------------------------------------------------------------------------------
// Load generator.

/** Runs a bounded command, resolving to its stdout; rejects on a non-zero exit or timeout. */
function run(cmd, args, timeoutMs, env = process.env, cwd = ROOT) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
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
      else reject(new Error(`${path.basename(cmd)} failed (${signal ?? code}): ${(err || out).trim().slice(-500)}`));
    });
  });
}

/** Converts a wrk duration ("812.00us", "1.20ms", "2.01s", "1.5m") to milliseconds. */
function wrkMs(text) {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text ?? '');
  if (!match) return NaN;
  return Number(match[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2]];
}

/** The version of wrk, for the report. */
function wrkVersion(bin) {
  // `wrk -v` prints "wrk <version> [epoll] ..." and exits 1, so read stdout whatever the status.
  const banner = spawnSync(bin, ['-v'], { encoding: 'utf8', timeout: 5_000 }).stdout ?? '';
  return banner.match(/^wrk (\S+)/)?.[1] ?? '?';
}

/** One wrk run (one thread, 32 connections, bounded): requests/s, requests done, p99 in ms, errors. */
async function wrk(bin, port, seconds) {
  const out = await run(bin, ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', `http://${HOST}:${port}/`],
    (seconds + 15) * 1000);
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const requests = Number(out.match(/(\d+) requests in/)?.[1]);
  const p99 = wrkMs(out.match(/^\s+99%\s+(\S+)/m)?.[1]);
  const errors = out.match(/Non-2xx or 3xx responses: \d+|Socket errors: .*/)?.[0];
  if (!Number.isFinite(rps) || !Number.isFinite(requests)) throw new Error(`cannot parse wrk output: ${oneLine(out)}`);
  return { rps, requests, p99, errors };
}

// ---------------------------------------------------------------------------------------------------
// The cases.

/** A case whose processes are fixed commands (most of them). */
function fixed(commandsFor) {
  return (port) => ({ commands: commandsFor(String(port)) });
}

/** The native servers of a runtime: one process, and two processes sharing the port. */
function nativeCases(rt) {
  const base = { runtime: rt.name, kind: 'native' };
  if (rt.name === 'node') {
    return [
      { ...base, server: 'node:http', procs: 1, baseline: 1,
        launch: fixed((port) => [rt.run(path.join(NATIVE, 'node-http.mjs'), [port])]) },
      { ...base, server: 'node:cluster (2 workers)', procs: 2, baseline: 2,
        launch: fixed((port) => [rt.run(path.join(NATIVE, 'node-cluster.mjs'), [port, '2'])]) },
    ];
  }
  const script = path.join(NATIVE, rt.name === 'deno' ? 'deno-serve.ts' : 'bun-serve.ts');
  const api = rt.name === 'deno' ? 'Deno.serve' : 'Bun.serve';
  // Deno 2 still gates `reusePort` behind --unstable-net (run's -A does not include it).
  const reuse = (port) => rt.run(script, [port, 'reuse-port'], ['--unstable-net']);
  return [
    { ...base, server: api, procs: 1, baseline: 1, launch: fixed((port) => [rt.run(script, [port])]) },
    { ...base, server: `${api} reusePort (2 processes)`, procs: 2, baseline: 2,
      launch: fixed((port) => [reuse(port), reuse(port)]) },
    // Bun.serve making what the HTTP layer must read to check a request (its URL and fields) and nothing else.
    ...(rt.name === 'bun' ? [{ ...base, server: `${api} reading URL and fields`, procs: 1,
      launch: fixed((port) => [rt.run(script, [port, 'reads'])]) }] : []),
  ];
}

/**
 * tsgunicorn with 1 and 2 workers in each socket mode, and with 1 worker writing its access log to stdout (a pipe
 * a `cat` drains into /dev/null); the BENCH_BASELINE checkout's the same way, its rows naming its commit. And
 * the Hono example with 2 workers. Pairs (`against`, labels): `--reuse-port` against the native rows with as many
 * processes (Deno and Bun, on Bun also the Bun.serve row that makes only the layer's reads; Node's 1 worker against
 * node:http), each access-log row against the row without it, and each of this checkout's rows against the
 * baseline's.
 */
function tsgunicornCases(rt, natives) {
  const cases = [];
  const checkouts = [{ root: ROOT, tag: '' }, ...(BASELINE ? [{ root: BASELINE, tag: BASELINE_TAG }] : [])];
  /** One tsgunicorn row per checkout: `server` names the flags, `extra` adds arguments. */
  const rows = (flags, workers, { skip = null, extra = [], discardStdout = false, against = [] } = {}) => {
    const ofCheckout = (tag) => ({
      runtime: rt.name, kind: 'tsgunicorn', server: `tsgunicorn${tag} ${flags}`, procs: workers,
    });
    for (const { root, tag } of checkouts) {
      const cli = path.join(root, path.relative(ROOT, rt.cli));
      cases.push({
        ...ofCheckout(tag), workers, skip,
        launch: fixed((port) => [{
          ...rt.run(cli, ['-w', String(workers), '-b', `${HOST}:${port}`, ...extra, APP]), discardStdout,
        }]),
        against: tag ? [] : [...against, ...(BASELINE ? [labelOf(ofCheckout(BASELINE_TAG))] : [])],
      });
    }
  };
  for (const mode of ['--no-reuse-port', '--reuse-port']) {
    for (const workers of [1, 2]) {
      const skip = mode === '--reuse-port' && rt.name === 'node' && !nodeHasReusePort(rt.version)
        ? `Node ${rt.version} cannot open SO_REUSEPORT sockets (reusePort needs Node 22.12+)` : null;
      const against = mode === '--reuse-port' && (rt.name !== 'node' || workers === 1)
        ? natives.filter((n) => n.procs === workers).map(labelOf) : [];
      rows(mode, workers, { skip, extra: [mode], against });
    }
  }
  const withoutLog = labelOf({ runtime: rt.name, kind: 'tsgunicorn', server: 'tsgunicorn --no-reuse-port', procs: 1 });
  const accessLog = ['--no-reuse-port', '--access-logfile', '-'];
  for (const extra of [accessLog, [...accessLog, '--access-logformat', 'json']]) {
    rows(extra.join(' '), 1, { extra, discardStdout: true, against: [withoutLog] });
  }
  cases.push({
    runtime: rt.name, kind: 'tsgunicorn', server: 'tsgunicorn + Hono (examples/hono-app.ts)', procs: 2, workers: 2,
    launch: fixed((port) => [rt.run(rt.cli, ['-w', '2', '-b', `${HOST}:${port}`, HONO_APP])]),
  });
  if (rt.name !== 'deno') {
    const executable = path.join(EXECUTABLES, rt.name, 'server');
    cases.push({
      runtime: rt.name, kind: 'tsgunicorn', server: 'tsgunicorn build executable + Hono', procs: 2, workers: 2,
      executable: { target: rt.name, file: executable },
      launch: fixed((port) => [{ bin: executable, args: ['-w', '2', '-b', `${HOST}:${port}`], cwd: path.dirname(executable) }]),
    });
  }
  return cases;
}

/** The peers that run on a runtime: deno serve --parallel, @hono/node-server, srvx, PM2 cluster mode. */
function peerCases(rt) {
  const base = { runtime: rt.name, kind: 'peer' };
  const inPeer = (peer, file, args) => ({ ...rt.run(path.join(peerDir(peer), file), args), cwd: peerDir(peer) });
  const cases = [
    { ...base, server: 'srvx', procs: 1, peer: PEERS.srvx,
      launch: fixed((port) => [inPeer(PEERS.srvx, 'srvx.mjs', [port])]) },
  ];
  if (rt.name === 'deno') {
    cases.push({
      ...base, server: 'deno serve --parallel (DENO_JOBS=2)', procs: 2,
      launch: fixed((port) => [{
        bin: rt.bin,
        args: ['serve', '--parallel', '--allow-net', '--host', HOST, '--port', port, APP],
        env: { DENO_JOBS: '2' },
      }]),
    });
  }
  if (rt.name === 'node') {
    cases.push(
      { ...base, server: '@hono/node-server', procs: 1, peer: PEERS.honoNode,
        launch: fixed((port) => [inPeer(PEERS.honoNode, 'hono-node-server.mjs', [port])]) },
      { ...base, server: 'PM2 cluster mode (2 instances)', procs: 2, peer: PEERS.pm2, launch: launchPm2 },
    );
  }
  return cases;
}

/**
 * PM2 in cluster mode with 2 instances of node-http.mjs, in the foreground (pm2-runtime, no daemon) with a
 * PM2_HOME of its own. Its cleanup runs `pm2 kill` if a daemon was started there after all, then removes it.
 */
function launchPm2(port) {
  const dir = peerDir(PEERS.pm2);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgunicorn-bench-pm2-'));
  const env = { PM2_HOME: home, PORT: String(port) };
  const pm2 = (name) => path.join(dir, 'node_modules', 'pm2', 'bin', name);
  return {
    commands: [{ bin: process.execPath, args: [pm2('pm2-runtime'), 'start', 'node-http.mjs', '-i', '2'], cwd: dir, env }],
    async cleanup() {
      if (fs.existsSync(path.join(home, 'pm2.pid'))) {
        await run(process.execPath, [pm2('pm2'), 'kill'], 30_000, serverEnv(env))
          .catch((err) => log(`pm2 kill: ${oneLine(err.message)}`));
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A row's label: "node native: node:http ×1", "bun tsgunicorn --reuse-port ×2", "deno peer: srvx ×1". */
function labelOf({ runtime, kind, server, procs }) {
  return `${runtime} ${kind === 'tsgunicorn' ? '' : `${kind}: `}${server} ×${procs}`;
}

/** Every case of every runtime, filtered by BENCH_CASES. */
function allCases(runtimes) {
  const cases = runtimes.flatMap((rt) => {
    const natives = nativeCases(rt);
    return [...natives, ...tsgunicornCases(rt, natives), ...peerCases(rt)];
  });
  for (const c of cases) {
    c.label = labelOf(c);
    c.samples = [];
    c.failure = c.skip ?? null;
  }
  return CASE_FILTER ? cases.filter((c) => CASE_FILTER.test(c.label)) : cases;
}

/** The pairs among the selected cases, each [row, the row it is compared against]; a pair missing a row is left out. */
function pairsOf(cases) {
  const byLabel = new Map(cases.map((c) => [c.label, c]));
  return cases.flatMap((c) => (c.against ?? []).filter((label) => byLabel.has(label))
    .map((label) => [c, byLabel.get(label)]));
}

// ---------------------------------------------------------------------------------------------------
// Measuring.

/** Rebuilds dist/ of a checkout so that Node measures its current sources (bounded to 60 s). */
async function buildDist(root) {
  log(`building ${path.join(root, 'dist')} (node scripts/build.mjs)`);
  await run(process.execPath, [path.join(root, 'scripts', 'build.mjs')], 60_000, process.env, root);
}

/** CPU ticks the process trees of `before` (treeTicks) used since, processes started meanwhile included. */
function ticksSince(before, roots) {
  let ticks = 0;
  for (const [pid, t] of treeTicks(roots)) ticks += t - (before.get(pid) ?? 0);
  return ticks;
}

/**
 * One sample of each case of a group (a lone case, or the rows that pairs link): each started on a fresh port
 * (start-up time) and warmed up, then all measured in turns of 1 s with wrk, SECONDS turns each, the group's order
 * reversed every other turn, so that the machine's drift over seconds moves the rows of a pair alike (samples 4 s
 * apart differed by as much as what was measured). A case's figures: the mean req/s of its turns, the CPU time of
 * its whole process tree over them per request, the median of their p99s, RSS after the last. Resolves to a Map
 * from each case to its sample or to the error that stopped it; every case is stopped.
 */
async function sampleGroup(wrkBin, group) {
  const results = new Map();
  const running = [];
  try {
    for (const c of group) {
      try {
        const port = await freePort();
        const instance = await startCase(c, port);
        running.push({ c, port, instance, roots: instance.procs.map((p) => p.child.pid), turns: [] });
        await wrk(wrkBin, port, WARMUP_SECONDS);
      } catch (err) {
        results.set(c, err);
      }
    }
    for (let turn = 0; turn < SECONDS; turn++) {
      for (const r of turn % 2 === 0 ? running : [...running].reverse()) {
        if (results.has(r.c)) continue;
        try {
          const before = treeTicks(r.roots);
          const load = await wrk(wrkBin, r.port, 1);
          r.turns.push({ ...load, ticks: ticksSince(before, r.roots) });
        } catch (err) {
          results.set(r.c, err);
        }
      }
    }
    for (const r of running) {
      if (results.has(r.c)) continue;
      const requests = r.turns.reduce((sum, t) => sum + t.requests, 0);
      const ticks = r.turns.reduce((sum, t) => sum + t.ticks, 0);
      results.set(r.c, {
        rps: r.turns.reduce((sum, t) => sum + t.rps, 0) / r.turns.length,
        requests,
        p99: median(r.turns, (t) => t.p99),
        errors: r.turns.map((t) => t.errors).find(Boolean),
        cpuUs: (ticks / CLK_TCK) * 1e6 / requests,
        rss: treeRss(r.roots),
        startupMs: r.instance.startupMs,
      });
    }
    return results;
  } finally {
    for (const r of running) await stopInstance(r.instance);
  }
}

/** The cases reachable from `start` through `partners`, breadth first: `start`, its partners, then theirs. */
function reach(start, partners) {
  const found = [start];
  for (let i = 0; i < found.length; i++) {
    for (const p of partners.get(found[i])) if (!found.includes(p)) found.push(p);
  }
  return found;
}

/**
 * One round's groups, in the cases' order: each case alone, except that the cases linked by pairs make one group
 * (sampleGroup measures its rows in turns), at the place of its first case: the row with the most partners
 * between them (half before it, half after: with two partners both are its neighbours), then the partners' own
 * partners. Even rounds reverse each group, so that which row of a pair goes first alternates from round to round.
 */
function roundGroups(cases, pairs, round) {
  const partners = new Map(cases.map((c) => [c, []]));
  for (const [a, b] of pairs) {
    if (partners.has(a) && partners.has(b)) {
      partners.get(a).push(b);
      partners.get(b).push(a);
    }
  }
  const groups = [];
  for (const c of cases) {
    if (groups.some((g) => g.includes(c))) continue;
    const hub = reach(c, partners).reduce((best, x) => (partners.get(x).length > partners.get(best).length ? x : best));
    const [, ...rest] = reach(hub, partners);
    const before = rest.slice(0, Math.floor(partners.get(hub).length / 2)).reverse();
    const group = [...before, hub, ...rest.slice(before.length)];
    groups.push(round % 2 === 1 ? group : group.reverse());
  }
  return groups;
}

/**
 * Runs every case once per round, rounds one after the other, so that noise spreads evenly over the cases (the
 * rows of a pair in turns: roundGroups, sampleGroup). Each sample records its round. A case that fails with no
 * sample yet keeps its one-line reason and is not tried again.
 */
async function runRounds(wrkBin, cases, pairs) {
  for (let round = 1; round <= ROUNDS; round++) {
    const groups = roundGroups(cases.filter((c) => !c.failure), pairs, round);
    for (const [i, group] of groups.entries()) {
      log(`round ${round}/${ROUNDS}, ${i + 1}/${groups.length}: ${group.map((c) => c.label).join(' | ')}`);
      for (const [c, result] of await sampleGroup(wrkBin, group)) {
        if (!(result instanceof Error)) {
          const s = { ...result, round };
          c.samples.push(s);
          log(`  ${c.label}: ${fmt(s.rps, 0)} req/s, ${fmt(s.cpuUs, 1)} µs CPU/req, p99 ${fmt(s.p99, 2)} ms, `
            + `RSS ${fmt(s.rss.mib, 1)} MiB, start-up ${fmt(s.startupMs, 0)} ms${s.errors ? `, ${s.errors}` : ''}`);
        } else {
          log(`  ${c.label}: FAILED: ${result.message}`);
          if (c.samples.length === 0) c.failure = oneLine(result.message);
          else c.notes = [...(c.notes ?? []), `round ${round}: ${oneLine(result.message)}`];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The report.

const fmt = (n, digits) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The median of the numbers that `pick` gives for each sample. */
function median(samples, pick) {
  const values = samples.map(pick).filter(Number.isFinite).sort((a, b) => a - b);
  if (values.length === 0) return NaN;
  const mid = Math.floor(values.length / 2);
  return values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

/** The medians of a case's samples. */
function summarize(c) {
  const s = c.samples;
  return {
    rps: median(s, (x) => x.rps),
    cpuUs: median(s, (x) => x.cpuUs),
    p99: median(s, (x) => x.p99),
    rssMib: median(s, (x) => x.rss.mib),
    processes: median(s, (x) => x.rss.processes),
    startupMs: median(s, (x) => x.startupMs),
    errors: s.map((x) => x.errors).find(Boolean),
  };
}

/** "a" against the 1-process baseline, and "a / b" with the 2-process one for 2-process rows. */
function ratios(value, row, base1, base2, key) {
  const r1 = base1 ? fmt(value / base1[key], 2) : 'n/a';
  return row.procs === 2 ? `${r1} / ${base2 ? fmt(value / base2[key], 2) : 'n/a'}` : r1;
}

/** One Markdown table row for a case. */
function tableRow(c, baselines) {
  const head = `| ${c.runtime} | ${c.server} | ${c.procs} |`;
  if (c.samples.length === 0) {
    const reason = (c.failure ?? 'no sample').replaceAll('|', '\\|');
    return `${head} ${c.skip ? 'skipped' : 'failed'}: ${reason} | – | – | – | – | – | – |`;
  }
  const m = summarize(c);
  const b1 = baselines.get(`${c.runtime}/1`);
  const b2 = baselines.get(`${c.runtime}/2`);
  const warn = m.errors ? ` ⚠ ${m.errors}` : '';
  return `${head} ${fmt(m.rps, 0)}${warn} | ${ratios(m.rps, c, b1, b2, 'rps')} | ${fmt(m.cpuUs, 1)} `
    + `| ${ratios(m.cpuUs, c, b1, b2, 'cpuUs')} | ${fmt(m.p99, 2)} | ${fmt(m.rssMib, 1)} (${m.processes}) `
    + `| ${fmt(m.startupMs, 0)} |`;
}

/** The lowest, median and highest of `values`, as "0.97 (0.91–1.02)". */
function spread(values) {
  const finite = values.filter(Number.isFinite);
  return `${fmt(median(finite, (x) => x), 2)} (${fmt(Math.min(...finite), 2)}–${fmt(Math.max(...finite), 2)})`;
}

/**
 * The paired table: for each pair with both rows measured in the same round at least once, the rounds counted
 * and the per-round ratios (row / against, req/s and CPU µs per request): median, lowest and highest.
 */
function pairedComparison(pairs) {
  const measured = pairs.map(([row, against]) => {
    const rounds = row.samples.map((s) => [s, against.samples.find((t) => t.round === s.round)]).filter(([, t]) => t);
    return { row, against, rounds };
  }).filter((p) => p.rounds.length > 0);
  if (measured.length === 0) return [];
  const name = (c) => c.label.slice(c.runtime.length + 1);
  return [
    '', 'Paired rows: in every round the rows of a pair were up together and measured in turns of 1 s, which one first',
    'alternating from turn to turn. A ratio is the row\'s figure over the other row\'s in the same round; the table gives the median',
    'of these per-round ratios over the rounds where both rows were measured, with the lowest and highest. The',
    'machine\'s speed drifts, over seconds and between rounds (on the 2-core build machine the same server took 9 µs of',
    'CPU per request in one round and 14 µs in another); in turns, the drift moves both rows of a pair alike and the per-round ratio',
    'cancels it, while the main table\'s ratios divide medians of samples taken tens of seconds apart, which the',
    'drift moves by as much as the differences measured. These are the figures to read for tsgunicorn against the',
    'native server (`--reuse-port` against the native row with as many processes) and for the access log against',
    'the same row without it.'
      + (BASELINE ? ` Rows named tsgunicorn${BASELINE_TAG} are the BENCH_BASELINE checkout (${BASELINE}).` : ''),
    '',
    '| runtime | row | against | rounds | req/s ratio: median (min–max) | CPU µs/req ratio: median (min–max) |',
    '|---|---|---|---:|---:|---:|',
    ...measured.map(({ row, against, rounds }) => `| ${row.runtime} | ${name(row)} | ${name(against)} `
      + `| ${rounds.length} | ${spread(rounds.map(([s, t]) => s.rps / t.rps))} `
      + `| ${spread(rounds.map(([s, t]) => s.cpuUs / t.cpuUs))} |`),
  ];
}

/** The Markdown report: machine and versions, the table, how to read it, and any failures. */
function report(meta, cases, pairs) {
  const baselines = new Map(cases.filter((c) => c.baseline && c.samples.length > 0)
    .map((c) => [`${c.runtime}/${c.baseline}`, summarize(c)]));
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown CPU';
  const lines = [
    `Machine: nproc ${os.availableParallelism()} (${cpu}), ${os.platform()} ${os.release()}; ${meta.versions}`,
    `Peers: ${meta.peers.join(', ') || 'none installed'}; tsgunicorn ${meta.commit}`
      + `${meta.executables.length ? `; executables (tsgunicorn build): ${meta.executables.join(', ')}` : ''}`,
    `Date: ${new Date().toISOString()}; load: wrk ${meta.wrk} -t1 -c${CONNECTIONS} --latency, GET http://${HOST}:PORT/ `
      + `("Hello, World!"), ${SECONDS} turns of 1 s per sample after a ${WARMUP_SECONDS} s warm-up (the rows of a pair `
      + `in turns); median of ${ROUNDS} alternating round(s)`,
    '',
    '| runtime | server | procs | req/s | req/s vs native ×1 / ×2 | CPU µs/req | CPU vs native ×1 / ×2 '
      + '| p99 ms | RSS MiB (processes) | start-up ms |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...cases.map((c) => tableRow(c, baselines)),
    '',
    'On 2 cores one wrk thread saturates near the native servers\' speed, so req/s barely separates the fast',
    'servers (Bun.serve, Deno.serve and what is built on them): CPU per request is the figure that does. It is',
    'utime+stime of the server\'s whole process tree (master, workers, helpers; from /proc/PID/stat) over the',
    'measured window, divided by the requests wrk completed. Ratios compare with the runtime\'s native 1-process',
    'server of this run, and for 2-process rows also with its native 2-process row (node:cluster for Node,',
    'two reusePort processes for Deno and Bun); a req/s ratio above 1 and a CPU ratio below 1 are better.',
    'procs: worker processes (threads for deno serve --parallel); RSS sums VmRSS over the whole tree, whose',
    'process count is in parentheses. Start-up: spawn until the first 200 on a pre-chosen port.',
  ];
  lines.push(...pairedComparison(pairs));
  const notes = cases.filter((c) => c.notes?.length);
  if (notes.length > 0) {
    lines.push('', 'Failed samples (the row is the median of the others):', '');
    for (const c of notes) lines.push(`- ${c.label}: ${c.notes.join('; ')}`);
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const wrkBin = onPath('wrk');
  if (!wrkBin) {
    console.log('wrk is needed: install it (e.g. `apt-get install wrk`), then run `npm run bench` again.');
    return;
  }
  const runtimes = [];
  for (const name of RUNTIMES) {
    const rt = describeRuntime(name);
    if (rt) runtimes.push(rt);
    else log(`${name}: runtime not available (unknown name, or binary not found), skipped`);
  }
  for (const file of ['tsgunicorn.config.ts', 'tsgunicorn.config.js', 'tsgunicorn.config.json']) {
    if (fs.existsSync(path.join(ROOT, file))) log(`warning: ${file} in ${ROOT} applies to every tsgunicorn run`);
  }
  if (runtimes.some((rt) => rt.name === 'node')) {
    for (const root of [ROOT, ...(BASELINE ? [BASELINE] : [])]) await buildDist(root);
  }
  const cases = allCases(runtimes);
  const peers = await preparePeers(cases);
  const executables = await prepareExecutables(cases);
  const skipped = cases.filter((c) => c.skip).length;
  log(`${cases.length} cases (${skipped} skipped) × ${ROUNDS} round(s), ${SECONDS} turns of 1 s each after a `
    + `${WARMUP_SECONDS} s warm-up`);
  const pairs = pairsOf(cases);
  await runRounds(wrkBin, cases, pairs);

  const versions = ['node', 'deno', 'bun']
    .map((name) => `${name} ${(runtimes.find((rt) => rt.name === name) ?? describeRuntime(name))?.version ?? 'not found'}`)
    .join(', ');
  const commit = capture('git', ['rev-parse', '--short', 'HEAD']) ?? '?';
  const markdown = report({ versions, peers, executables, commit, wrk: wrkVersion(wrkBin) }, cases, pairs);
  process.stdout.write(markdown);
  if (process.env.BENCH_OUT) {
    fs.writeFileSync(path.resolve(process.env.BENCH_OUT), markdown);
    log(`wrote ${path.resolve(process.env.BENCH_OUT)}`);
  }
}

// Ctrl-C or a kill of the benchmark still stops every server it started.
await runMain(main, { log, cleanUp: stopAll });
