// Restart losses: how many requests fail while tsgunicorn replaces workers under load.
//
//   node scripts/restart-losses.mjs             (npm run bench:restarts)
//   node scripts/restart-losses.mjs --migrate   (as root: everything with net.ipv4.tcp_migrate_req at 0, then 1)
//
// For each runtime × socket mode (inherit: --no-reuse-port; reuse-port) × event (HUP twice, TTIN then TTOU,
// --max-requests 300 recycling, kill -9 of one worker) and each load (keep-alive: 8 clients POSTing on a
// keep-alive undici Agent; fresh: 4 clients, one connection per request), it starts tsgunicorn -w 2 on a small
// app (POST reads the body and answers after 5 ms, GET says hello), runs the load for BENCH_SECONDS while the
// events happen (about 1 s apart, each once the workers it starts are ready), and counts the failed requests
// by kind. Every server is SIGKILLed by pid (master, workers, any child it left) at the end of its scenario.
//
// Env: BENCH_SECONDS (default 4) of load per scenario at least; BENCH_RUNTIMES (default node,node26,deno,bun:
//      node is the Node running this script, node26 is $NODE26 or /tmp/node26/node_modules/.bin/node);
//      BENCH_CASES: a regexp (case-insensitive) on "runtime mode event load", e.g. "bun reuse-port hup";
//      BENCH_OUT=path also writes the Markdown report there. Report on stdout, progress on stderr.
// --migrate sets the sysctl with `sysctl -w` and always puts the original value back (also on SIGINT/SIGTERM).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import {
  ROOT, capture, childrenOf, describeRuntime, nodeHasReusePort, nodeRuntime, progressLog, runMain, sleep, startTime,
  statFields,
} from './_proc-and-runtimes.mjs';

const HOST = '127.0.0.1';
const WORKERS = 2;
const MAX_REQUESTS = 300;
const SECONDS = Number.parseInt(process.env.BENCH_SECONDS ?? '', 10) > 0 ? Number(process.env.BENCH_SECONDS) : 4;
const RUNTIMES = (process.env.BENCH_RUNTIMES || 'node,node26,deno,bun').split(',').map((s) => s.trim()).filter(Boolean);
const CASE_FILTER = process.env.BENCH_CASES ? new RegExp(process.env.BENCH_CASES, 'i') : null;
const MIGRATE = process.argv.includes('--migrate');
const MIGRATE_SYSCTL = 'net.ipv4.tcp_migrate_req';
const EVENT_GAP_MS = 1_000;
const EVENT_TIMEOUT_MS = 10_000;
const STARTUP_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 5_000;
const KILL_WAIT_MS = 3_000;
const POST_BODY = JSON.stringify({ message: 'restart-losses', padding: 'x'.repeat(64) });

/** The app every scenario serves, written to a temporary folder for the run. */
const APP_SOURCE = `// tsgunicorn restart-losses app: POST reads the body and answers after 5 ms; GET says hello.
export default {
  async fetch(request) {
    if (request.method !== 'POST') return new Response('hello');
    const body = await request.text();
    await new Promise((resolve) => setTimeout(resolve, 5));
    return new Response(\`got \${body.length} bytes\`);
  },
};
`;

/** Servers still running, so that a signal or an error stops them too. */
const live = new Set();
/** The sysctl value to put back, while the run has changed it. */
let sysctlToRestore = null;
/** The temporary folder holding the app, while it exists. */
let appDir = null;

/** Progress goes to stderr so that stdout is only the report. */
const log = progressLog('restart-losses');

// ---------------------------------------------------------------------------------------------------
// Runtimes.

/** The second Node: $NODE26, else /tmp/node26's, if present (its real path, so that pids are Node's own). */
function node26Runtime() {
  const candidate = process.env.NODE26 || '/tmp/node26/node_modules/.bin/node';
  return fs.existsSync(candidate) ? nodeRuntime(fs.realpathSync(candidate)) : null;
}

/**
 * How to run tsgunicorn on a runtime by name (node26: the second Node): its binary, the arguments before
 * tsgunicorn's own, a label with the version, and its socket modes (reuse-port only where Node has reusePort).
 * Null when the name is unknown or its binary is missing.
 */
function tsgunicornRuntime(name) {
  const rt = name === 'node26' ? node26Runtime() : describeRuntime(name);
  if (!rt) return null;
  const reusePort = rt.name !== 'node' || nodeHasReusePort(rt.version);
  return {
    name, label: `${rt.name} ${rt.version}`, bin: rt.bin, command: rt.run(rt.cli, []).args,
    modes: reusePort ? ['inherit', 'reuse-port'] : ['inherit'],
  };
}

// ---------------------------------------------------------------------------------------------------
// The sysctl.

/** The current value of net.ipv4.tcp_migrate_req ("0", "1"), or "n/a" where the kernel has none. */
function readMigrate() {
  try {
    return fs.readFileSync(`/proc/sys/${MIGRATE_SYSCTL.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return 'n/a';
  }
}

/** Sets net.ipv4.tcp_migrate_req with `sysctl -w` (root); throws when that fails. */
function writeMigrate(value) {
  const result = spawnSync('sysctl', ['-w', `${MIGRATE_SYSCTL}=${value}`], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0 || readMigrate() !== value) {
    throw new Error(`sysctl -w ${MIGRATE_SYSCTL}=${value} failed (root needed): ${(result.stderr || '').trim()}`);
  }
}

/** Puts the original sysctl value back, once, if the run changed it. */
function restoreMigrate() {
  if (sysctlToRestore === null) return;
  const value = sysctlToRestore;
  sysctlToRestore = null;
  try {
    writeMigrate(value);
    log(`${MIGRATE_SYSCTL} restored to ${value}`);
  } catch (err) {
    log(`could not restore ${MIGRATE_SYSCTL} to ${value}: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Servers: start, follow the workers through the debug log, stop by pid.

/** Applies one line of tsgunicorn's error log to the server's view of its workers. */
function followLine(server, line) {
  let match;
  if ((match = /Listening at: http:\/\/[^:]+:(\d+)/.exec(line))) server.port = Number(match[1]);
  else if ((match = /Booting worker with pid: (\d+)/.exec(line))) server.workerPids.add(Number(match[1]));
  else if ((match = /Worker \(pid:(\d+)\) is ready/.exec(line))) server.ready.push(Number(match[1]));
  else if ((match = /Worker \(pid:(\d+)\) exited;/.exec(line))) server.exited.add(Number(match[1]));
  if (!server.stopping && /\[(ERROR|CRITICAL)\]|exception/i.test(line)) server.errors.push(line);
}

/** Starts tsgunicorn -w 2 on a free port and resolves once every worker is ready. */
async function startServer(runtime, mode, extraArgs, appPath) {
  const args = [...runtime.command, '-w', String(WORKERS), '-b', `${HOST}:0`, '--log-level', 'debug',
    mode === 'reuse-port' ? '--reuse-port' : '--no-reuse-port', ...extraArgs, appPath];
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([key]) => !key.startsWith('TSGUNICORN_') && !['PORT', 'WEB_CONCURRENCY'].includes(key)));
  const child = spawn(runtime.bin, args, { cwd: ROOT, env: { ...env, DENO_NO_UPDATE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { child, masterStart: null, port: 0, workerPids: new Set(), ready: [], exited: new Set(), errors: [], tail: '' };
  live.add(server);
  child.once('spawn', () => { server.masterStart = startTime(child.pid); });
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop();
    for (const line of lines) followLine(server, line);
    server.tail = (server.tail + chunk).slice(-4_000);
  });
  child.stdout.resume();
  try {
    await waitFor(server, () => server.port > 0 && server.ready.length >= WORKERS, STARTUP_TIMEOUT_MS, 'start');
  } catch (err) {
    await stopServer(server);
    throw err;
  }
  return server;
}

/** Whether the master has exited. */
function masterGone(server) {
  return server.child.exitCode !== null || server.child.signalCode !== null;
}

/** Polls until `done()` holds; throws (with the log's tail) on timeout or when the master has died. */
async function waitFor(server, done, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (masterGone(server)) throw new Error(`${what}: the master exited: ${server.tail.trim().split('\n').at(-1)}`);
    if (performance.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs / 1000} s`);
    await sleep(20);
  }
}

/** Worker pids that have logged ready and not exited, oldest first. */
function liveWorkers(server) {
  return server.ready.filter((pid) => !server.exited.has(pid));
}

/**
 * SIGKILLs the master, every worker it announced and every process it forked (checked by start time), then
 * waits until they are gone; a process that survives is logged. Log lines from then on are not errors.
 */
async function stopServer(server) {
  server.stopping = true;
  const pids = new Set([...server.workerPids, ...childrenOf(server.child.pid)]);
  for (const pid of [...pids]) for (const child of childrenOf(pid)) pids.add(child);
  const identities = [[server.child.pid, server.masterStart], ...[...pids].map((pid) => [pid, startTime(pid)])]
    .filter(([pid, start]) => pid && start !== null && startTime(pid) === start);
  for (const [pid] of identities) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  const deadline = performance.now() + KILL_WAIT_MS;
  let left = identities;
  while (left.length > 0 && performance.now() < deadline) {
    await sleep(50);
    left = left.filter(([pid, start]) => startTime(pid) === start && !hasExited(pid));
  }
  for (const [pid] of left) log(`pid ${pid} still there ${KILL_WAIT_MS / 1000} s after SIGKILL`);
  live.delete(server);
}

/** Whether a process has exited (gone, or a zombie waiting for its parent to reap it). */
function hasExited(pid) {
  return (statFields(pid)?.[0] ?? 'Z') === 'Z';
}

// ---------------------------------------------------------------------------------------------------
// Events: each is a list of steps; a step acts, then waits until the workers it changes are ready or gone.

/** A step that signals the master and waits for `readyMore` more ready workers and `exitMore` more exits. */
function signalStep(signal, readyMore, exitMore) {
  return {
    name: signal,
    act(server) {
      const target = { ready: server.ready.length + readyMore, exited: server.exited.size + exitMore };
      process.kill(server.child.pid, signal);
      return () => server.ready.length >= target.ready && server.exited.size >= target.exited;
    },
  };
}

/** A step that SIGKILLs the oldest live worker and waits for its replacement to be ready. */
const killStep = {
  name: 'kill -9',
  act(server) {
    const target = server.ready.length + 1;
    const [victim] = liveWorkers(server);
    process.kill(victim, 'SIGKILL');
    return () => server.ready.length >= target;
  },
};

/** The events: their label, tsgunicorn's extra arguments, and their steps. */
const EVENTS = [
  { name: 'HUP ×2', args: [], steps: [signalStep('SIGHUP', WORKERS, WORKERS), signalStep('SIGHUP', WORKERS, WORKERS)] },
  { name: 'TTIN, TTOU', args: [], steps: [signalStep('SIGTTIN', 1, 0), signalStep('SIGTTOU', 0, 1)] },
  { name: `max-requests ${MAX_REQUESTS}`, args: ['--max-requests', String(MAX_REQUESTS)], steps: [] },
  { name: 'kill -9 one worker', args: [], steps: [killStep] },
];

/**
 * Runs an event's steps from 1 s into the load, each at least 1 s after the previous one and once that one's
 * workers are ready (or gone). Resolves with the time the last one settled, and notes a step that timed out.
 */
async function runSteps(server, steps, loadStart, notes) {
  let nextAt = loadStart + EVENT_GAP_MS;
  let settledAt = loadStart;
  for (const step of steps) {
    await sleep(Math.max(0, nextAt - performance.now()));
    const actedAt = performance.now();
    const done = step.act(server);
    try {
      await waitFor(server, done, EVENT_TIMEOUT_MS, step.name);
    } catch (err) {
      notes.push(err.message);
    }
    settledAt = performance.now();
    nextAt = Math.max(actedAt + EVENT_GAP_MS, settledAt);
  }
  return settledAt;
}

// ---------------------------------------------------------------------------------------------------
// Loads.

/** The two loads: keep-alive POSTs from 8 clients, and 4 clients each opening a new connection per request. */
const LOADS = [
  { name: 'keep-alive', clients: 8, reset: false },
  { name: 'fresh', clients: 4, reset: true },
];

/** The kind of a failed request: the HTTP status, undici's socket message, or the error code. */
function failureKind(err) {
  if (err.code === 'UND_ERR_SOCKET') return err.message;
  return err.code ?? err.message;
}

/** One client: POSTs in a loop until `state.stop`, counting answers and failures. */
async function client(url, dispatcher, reset, state) {
  while (!state.stop) {
    try {
      const res = await request(url, {
        dispatcher, method: 'POST', body: POST_BODY, reset,
        headers: { 'content-type': 'application/json' },
        headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS,
      });
      await res.body.text();
      if (res.statusCode >= 200 && res.statusCode < 300) state.ok++;
      else countFailure(state, `HTTP ${res.statusCode}`);
    } catch (err) {
      countFailure(state, failureKind(err));
      await sleep(10);
    }
  }
}

/** Counts one failed request under its kind. */
function countFailure(state, kind) {
  state.failed++;
  state.kinds.set(kind, (state.kinds.get(kind) ?? 0) + 1);
}

/**
 * One scenario: a fresh server, the load on it, the event's steps during the load; the load goes on for
 * BENCH_SECONDS and at least 1 s after the last step settled. Always stops the server.
 */
async function runScenario(runtime, mode, event, load, appPath) {
  const server = await startServer(runtime, mode, event.args, appPath);
  const bootedBefore = server.workerPids.size;
  const agent = new Agent({ connections: load.clients, keepAliveTimeout: 4_000 });
  const state = { stop: false, ok: 0, failed: 0, kinds: new Map(), notes: [] };
  try {
    const url = `http://${HOST}:${server.port}/`;
    const loadStart = performance.now();
    const clients = Array.from({ length: load.clients }, () => client(url, agent, load.reset, state));
    const settledAt = await runSteps(server, event.steps, loadStart, state.notes);
    await sleep(Math.max(loadStart + SECONDS * 1000, settledAt + EVENT_GAP_MS) - performance.now());
    state.stop = true;
    await Promise.all(clients);
  } finally {
    state.stop = true;
    await agent.destroy().catch(() => {});
    await stopServer(server);
  }
  return { ...state, booted: server.workerPids.size - bootedBefore, errors: server.errors };
}

// ---------------------------------------------------------------------------------------------------
// The run and the report.

/** Every scenario of the available runtimes, filtered by BENCH_CASES. */
function allScenarios(runtimes) {
  const scenarios = [];
  for (const runtime of runtimes) {
    for (const mode of runtime.modes) {
      for (const event of EVENTS) {
        for (const load of LOADS) {
          const label = `${runtime.name} ${mode} ${event.name} ${load.name}`;
          if (!CASE_FILTER || CASE_FILTER.test(label)) scenarios.push({ runtime, mode, event, load, label });
        }
      }
    }
  }
  return scenarios;
}

/** Runs every scenario once (with the sysctl as it is now); a scenario that fails keeps its reason. */
async function runPass(scenarios, appPath) {
  const migrate = readMigrate();
  const results = new Map();
  for (const [i, s] of scenarios.entries()) {
    log(`${MIGRATE_SYSCTL}=${migrate} ${i + 1}/${scenarios.length}: ${s.label} (${s.runtime.label})`);
    try {
      const r = await runScenario(s.runtime, s.mode, s.event, s.load, appPath);
      results.set(s, r);
      log(`  ${r.ok} ok, ${r.failed} failed${r.failed ? ` (${kindsText(r.kinds)})` : ''}, ${r.booted} workers booted`
        + `${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`);
    } catch (err) {
      results.set(s, { error: err.message });
      log(`  FAILED: ${err.message}`);
    }
  }
  return { migrate, results };
}

/** "ECONNRESET 3, other side closed 1", most frequent first. */
function kindsText(kinds) {
  return [...kinds].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${n}`).join(', ');
}

/** One load's cells: requests ok, failed, and the failure kinds (or why the scenario did not run). */
function loadCells(result) {
  if (!result) return '– | – | –';
  if (result.error) return `failed: ${result.error.replaceAll('|', '\\|')} | – | –`;
  const notes = result.notes.length ? ` ⚠ ${result.notes.join('; ')}` : '';
  return `${result.ok} | ${result.failed ? `**${result.failed}**` : 0} | ${kindsText(result.kinds) || '–'}${notes}`;
}

/** The Markdown table of one pass: a row per runtime, mode and event, with both loads side by side. */
function passTable(scenarios, pass) {
  const lines = [
    `### ${MIGRATE_SYSCTL} = ${pass.migrate}`,
    '',
    '| runtime | mode | event | keep-alive ok | failed | failure kinds | fresh ok | failed | failure kinds | workers booted | tsgunicorn ERROR lines |',
    '|---|---|---|---:|---:|---|---:|---:|---|---:|---:|',
  ];
  const rows = new Map();
  for (const s of scenarios) {
    const key = `${s.runtime.label}|${s.mode}|${s.event.name}`;
    rows.set(key, { ...rows.get(key), [s.load.name]: pass.results.get(s) });
  }
  for (const [key, byLoad] of rows) {
    const all = Object.values(byLoad).filter((r) => r && !r.error);
    const booted = all.map((r) => r.booted).join(' / ');
    const errors = all.reduce((sum, r) => sum + r.errors.length, 0);
    lines.push(`| ${key.replaceAll('|', ' | ')} | ${loadCells(byLoad['keep-alive'])} | ${loadCells(byLoad.fresh)} `
      + `| ${booted || '–'} | ${errors} |`);
  }
  return lines.join('\n');
}

/** The distinct ERROR/CRITICAL/exception lines of tsgunicorn's logs (pids and times masked), with counts. */
function errorSummary(passes) {
  const counts = new Map();
  for (const pass of passes) {
    for (const [s, r] of pass.results) {
      for (const line of r.errors ?? []) {
        const text = line.replace(/^\[[^\]]*\] \[\d+\] /, '').replace(/\d{2,}/g, 'N');
        const key = `${text} (${s.runtime.name} ${s.mode}, ${s.event.name})`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  if (counts.size === 0) return 'tsgunicorn logged no ERROR, CRITICAL or exception line.';
  return ['tsgunicorn ERROR/CRITICAL/exception lines (pids masked as N), with the scenarios that logged them:', '',
    ...[...counts].map(([line, n]) => `- ${n}× \`${line}\``)].join('\n');
}

/** The whole report: machine, versions, how the scenarios ran, one table per pass, tsgunicorn's errors. */
function report(runtimes, scenarios, passes) {
  const commit = capture('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) ?? '?';
  const skipped = runtimes.filter((rt) => rt.modes.length === 1).map((rt) => `${rt.label}: no reuse-port (needs Node 22.12+)`);
  const undiciVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'undici', 'package.json'), 'utf8')).version;
  return [
    `Machine: nproc ${os.availableParallelism()}, ${os.platform()} ${os.release()}; ${runtimes.map((rt) => rt.label).join(', ')}; `
      + `tsgunicorn ${commit}; ${new Date().toISOString()}`,
    `Each scenario: tsgunicorn -w ${WORKERS} -b ${HOST}:0 on a POST app (reads the body, answers after 5 ms); `
      + `load for ${SECONDS} s at least (and 1 s past the last event) with undici ${undiciVersion}: keep-alive = 8 clients `
      + 'POSTing on one keep-alive Agent, fresh = 4 clients with a new connection per request (reset: true). Events '
      + 'from 1 s into the load, about 1 s apart, each once the previous one\'s workers were ready (or gone): HUP ×2, '
      + `TTIN then TTOU, --max-requests ${MAX_REQUESTS} (workers recycle by themselves), SIGKILL of the oldest worker. `
      + 'Modes: inherit = --no-reuse-port, reuse-port = --reuse-port. "workers booted" counts the new workers during '
      + 'the keep-alive / fresh load.',
    ...(skipped.length ? [`Not run: ${skipped.join('; ')}.`] : []),
    '',
    ...passes.flatMap((pass) => [passTable(scenarios, pass), '']),
    errorSummary(passes),
    '',
  ].join('\n');
}

/** Runs the passes: once, or with --migrate at 0 and then 1, restoring the sysctl afterwards. */
async function runPasses(scenarios, appPath) {
  if (!MIGRATE) return [await runPass(scenarios, appPath)];
  const original = readMigrate();
  if (original === 'n/a') throw new Error(`--migrate: this kernel has no ${MIGRATE_SYSCTL}`);
  const passes = [];
  try {
    for (const value of ['0', '1']) {
      sysctlToRestore = original;
      writeMigrate(value);
      passes.push(await runPass(scenarios, appPath));
    }
  } finally {
    restoreMigrate();
  }
  return passes;
}

/** Finds the runtimes, writes the app to a temporary folder, runs the passes, prints (and saves) the report. */
async function main() {
  const runtimes = RUNTIMES.map((name) => {
    const rt = tsgunicornRuntime(name);
    if (!rt) log(`${name}: not available (unknown name or binary not found), skipped`);
    return rt;
  }).filter(Boolean);
  if (runtimes.some((rt) => rt.command[0].endsWith('.js')) && !fs.existsSync(path.join(ROOT, 'dist', 'tsgunicorn.js'))) {
    throw new Error('dist/tsgunicorn.js is missing: run npm run build');
  }
  const scenarios = allScenarios(runtimes);
  if (scenarios.length === 0) throw new Error('no scenario to run (BENCH_RUNTIMES, BENCH_CASES)');
  appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgunicorn-losses-'));
  const appPath = path.join(appDir, 'app.mjs');
  fs.writeFileSync(appPath, APP_SOURCE);
  log(`${scenarios.length} scenarios${MIGRATE ? ` × 2 (${MIGRATE_SYSCTL} 0 and 1)` : ''}, ${SECONDS} s of load each`);
  const markdown = report(runtimes, scenarios, await runPasses(scenarios, appPath));
  process.stdout.write(markdown);
  if (process.env.BENCH_OUT) {
    fs.writeFileSync(path.resolve(process.env.BENCH_OUT), markdown);
    log(`wrote ${path.resolve(process.env.BENCH_OUT)}`);
  }
}

/** Stops every server still running, puts the sysctl back and removes the app's folder. */
async function cleanUp() {
  await Promise.all([...live].map(stopServer));
  restoreMigrate();
  if (appDir) fs.rmSync(appDir, { recursive: true, force: true });
  appDir = null;
}

// Ctrl-C or a kill of the script still stops every server and puts the sysctl back (first thing).
await runMain(main, { log, cleanUp, onSignal: restoreMigrate });
