// The torture run: how many requests fail while tsgunicorn is restarted, resized, recycled, upgraded and has
// workers killed or stuck, under load (issue 14's proof).
//
//   npm run torture                     (node --import ./scripts/register-typescript.mjs scripts/torture.mjs)
//   npm run torture -- --migrate        (as root: everything with net.ipv4.tcp_migrate_req at 0, then 1)
//
// For each runtime × listener mode (inherit: --no-reuse-port; reuse-port) × event it starts tsgunicorn -w 2 on
// scripts/torture-app.ts, runs the load of scripts/torture-load.ts (32 keep-alive connections POSTing 256-byte
// bodies, one request in four answered 50 ms later, every answer checked against its body), and once the load has
// run 1 s, the event: HUP, TTIN, TTOU, kill -9 of one worker, --max-requests recycling, --max-worker-memory
// recycling (one worker told to fill memory), USR2 then TERM of the old master, a worker stuck in `while (true)`
// under --timeout 2 — or none (steady). Each step waits until the workers it starts are ready (or gone); the load
// goes on for BENCH_SECONDS and at least 1 s past the last step. Every request is counted: sent, 200 with its own
// body, failed by kind. Every server is SIGKILLed by pid (masters, workers, anything they forked) at the end.
//
// Env: BENCH_SECONDS (default 4) of load per scenario at least;
//      BENCH_RUNTIMES (default node,node26,deno,bun: node is the Node running this script, in its modes; node26
//        is reuse-port mode under $NEWER_NODE, or the Node 26 `npm run test:newer-node` installed, or /tmp/node26's);
//      BENCH_CASES: a regexp (case-insensitive) on "runtime mode event load", e.g. "bun reuse-port hup";
//      BENCH_LOADS (default keep-alive; also fresh: a new connection per request);
//      BENCH_OUT=path also writes the Markdown report there. Report on stdout, progress on stderr.
// A flag the build does not have (--max-worker-memory) or a USR2 the master refuses makes that row
// "skipped: not in this build". --migrate sets the sysctl with `sysctl -w` and always puts the original value back
// (also on SIGINT/SIGTERM).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import {
  NEWER_NODE_BIN, ROOT, capture, childrenOf, describeRuntime, nodeHasReusePort, nodeRuntime, progressLog, runMain, sleep,
  startTime, statFields,
} from './_proc-and-runtimes.mjs';
import { TORTURE_LOAD, failureKind, kindsText, startLoad } from './torture-load.ts';

const HOST = '127.0.0.1';
const WORKERS = 2;
const APP = path.join(ROOT, 'scripts', 'torture-app.ts');
const SECONDS = Number.parseInt(process.env.BENCH_SECONDS ?? '', 10) > 0 ? Number(process.env.BENCH_SECONDS) : 4;
const RUNTIMES = (process.env.BENCH_RUNTIMES || 'node,node26,deno,bun').split(',').map((s) => s.trim()).filter(Boolean);
const LOAD_NAMES = (process.env.BENCH_LOADS || 'keep-alive').split(',').map((s) => s.trim()).filter(Boolean);
const CASE_FILTER = process.env.BENCH_CASES ? new RegExp(process.env.BENCH_CASES, 'i') : null;
const MIGRATE = process.argv.includes('--migrate');
const MIGRATE_SYSCTL = 'net.ipv4.tcp_migrate_req';
const EVENT_GAP_MS = 1_000;
const EVENT_TIMEOUT_MS = 15_000;
const STARTUP_TIMEOUT_MS = 20_000;
const KILL_WAIT_MS = 3_000;
/** --max-requests: low enough that both workers recycle within a few seconds of load. */
const MAX_REQUESTS = 500;
/** --max-worker-memory, and what /balloon makes one worker keep: above it, whatever the runtime's own RSS. */
const MAX_WORKER_MEMORY_MIB = 400;
const BALLOON_MIB = 480;
/** --timeout for the stuck worker: the master aborts it after this, and kills it 1 s later. */
const STUCK_TIMEOUT_S = 2;

/** Servers still running, so that a signal or an error stops them too. */
const live = new Set();
/** The sysctl value to put back, while the run has changed it. */
let sysctlToRestore = null;
/** The temporary folder of the run (pidfiles), while it exists. */
let runDir = null;

/** Progress goes to stderr so that stdout is only the report. */
const log = progressLog('torture');

// ---------------------------------------------------------------------------------------------------
// Runtimes.

/** The newer Node: $NEWER_NODE, the one `npm run test:newer-node` installed, or /tmp/node26's (its real path). */
function newerNodeRuntime() {
  const candidates = [process.env.NEWER_NODE, NEWER_NODE_BIN, '/tmp/node26/node_modules/.bin/node'].filter(Boolean);
  const found = candidates.find((file) => fs.existsSync(file));
  return found ? nodeRuntime(fs.realpathSync(found)) : null;
}

/**
 * How to run tsgunicorn on a runtime by name: its binary, the arguments before tsgunicorn's own, a label with the
 * version, and its listener modes (node: reuse-port only where Node has reusePort; node26: reuse-port, the mode
 * the system Node cannot run). Null when the name is unknown or its binary is missing.
 */
function tsgunicornRuntime(name) {
  const rt = name === 'node26' ? newerNodeRuntime() : describeRuntime(name);
  if (!rt) return null;
  const reusePort = rt.name !== 'node' || nodeHasReusePort(rt.version);
  const modes = name === 'node26' ? (reusePort ? ['reuse-port'] : []) : reusePort ? ['inherit', 'reuse-port'] : ['inherit'];
  return { name, label: `${rt.name} ${rt.version}`, bin: rt.bin, command: rt.run(rt.cli, []).args, modes };
}

/** The flags of tsgunicorn's --help on a runtime ("max-worker-memory", …): what this build has. */
function buildFlags(runtime) {
  const help = capture(runtime.bin, [...runtime.command, '--help']) ?? '';
  return new Set([...help.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
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
// Servers: start, follow every master and worker through the debug log, stop by pid.

/** Why a scenario did not run: its row says so instead of counts. */
class Skip extends Error {}

/**
 * Applies one line of tsgunicorn's error log (`[time] [pid] [LEVEL] message`, from every master and worker
 * writing to the same stderr) to the server's view: workers booted, ready (under which master), exited, timed out;
 * a new master (USR2) and its promotion.
 */
function followLine(server, line) {
  const from = Number(/^\[[^\]]*\] \[(\d+)\]/.exec(line)?.[1]);
  let match;
  if ((match = /Listening at: http:\/\/[^:]+:(\d+)/.exec(line))) server.port ||= Number(match[1]);
  else if ((match = /Booting worker with pid: (\d+)/.exec(line))) server.workerPids.add(Number(match[1]));
  else if ((match = /Worker \(pid:(\d+)\) is ready/.exec(line))) server.ready.push({ pid: Number(match[1]), master: from });
  else if ((match = /Worker \(pid:(\d+)\) exited;/.exec(line))) server.exited.set(Number(match[1]), performance.now());
  else if ((match = /WORKER TIMEOUT \(pid:(\d+)\)/.exec(line))) server.timedOut.push(Number(match[1]));
  else if ((match = /started a new master \(pid:(\d+)\)/.exec(line))) {
    server.newMaster = Number(match[1]);
    server.newMasterStart = startTime(server.newMaster);
  }
  else if (/USR2 binary upgrade is not supported/.test(line)) server.usr2Refused = true;
  else if (/Master has been promoted/.test(line)) server.promoted = from;
  if (!server.stopping && /\[(ERROR|CRITICAL)\]|exception/i.test(line)) server.errors.push(line);
}

/** Starts tsgunicorn -w 2 on a free port and resolves once every worker is ready. */
async function startServer(runtime, mode, extraArgs) {
  const args = [...runtime.command, '-w', String(WORKERS), '-b', `${HOST}:0`, '--log-level', 'debug',
    mode === 'reuse-port' ? '--reuse-port' : '--no-reuse-port', ...extraArgs, APP];
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([key]) => !key.startsWith('TSGUNICORN_') && !['PORT', 'WEB_CONCURRENCY'].includes(key)));
  const child = spawn(runtime.bin, args, { cwd: ROOT, env: { ...env, DENO_NO_UPDATE_CHECK: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = {
    child, master: child.pid, masterStart: null, port: 0, workerPids: new Set(), ready: [], exited: new Map(),
    timedOut: [], newMaster: null, newMasterStart: null, usr2Refused: false, promoted: null, errors: [], tail: '',
  };
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

/** Whether the serving master has exited (the first one, or after USR2 + TERM the promoted one). */
function masterGone(server) {
  if (server.master !== server.child.pid) return hasExited(server.master);
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
  return server.ready.map((r) => r.pid).filter((pid) => !server.exited.has(pid));
}

/**
 * SIGKILLs every master (the first, a USR2 one), every worker they announced and every process they forked
 * (checked by start time), then waits until they are gone; a process that survives is logged. Log lines from then
 * on are not errors.
 */
async function stopServer(server) {
  server.stopping = true;
  const masters = [[server.child.pid, server.masterStart], [server.newMaster, server.newMasterStart]]
    .filter(([pid, start]) => pid && start !== null && startTime(pid) === start).map(([pid]) => pid);
  // Stopped first, a master spawns nothing between the reading of its children and the kill.
  for (const pid of masters) {
    try { process.kill(pid, 'SIGSTOP'); } catch { /* already gone */ }
  }
  const pids = new Set([...server.workerPids, ...masters.flatMap(childrenOf)]);
  for (const pid of [...pids]) for (const child of childrenOf(pid)) pids.add(child);
  const identities = [...masters.map((pid) => [pid, startTime(pid)]), ...[...pids].map((pid) => [pid, startTime(pid)])]
    .filter(([, start]) => start !== null);
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

/**
 * How many TCP connections to `port` process `pid` holds, from its socket fds found in /proc/net/tcp: those it
 * has accepted (ESTABLISHED), and with `ownListener` (reuse-port mode) those queued on its listening socket, which
 * go down with it too (an inherited listener is the master's: its queue survives the worker).
 */
function connectionsHeld(pid, port, ownListener) {
  let inodes;
  try {
    inodes = new Set(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try { return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]; } catch { return undefined; }
    }).filter(Boolean));
  } catch {
    return 0;
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(table, 'utf8'); } catch { continue; }
    for (const row of text.split('\n').slice(1)) {
      // local_address HEXIP:HEXPORT, state (01 ESTABLISHED, 0A LISTEN), tx_queue:rx_queue, …, the inode tenth.
      const [, local, , state, queues, , , , , inode] = row.trim().split(/\s+/);
      if (!local?.endsWith(`:${hexPort}`) || !inodes.has(inode)) continue;
      if (state === '01') count++;
      // A listening socket's rx_queue is its accept queue.
      else if (state === '0A' && ownListener) count += Number.parseInt(queues.split(':')[1], 16);
    }
  }
  return count;
}

/** One request outside the load on its own connection (no keep-alive): its status, or the kind of its failure. */
async function sideRequest(server, pathAndQuery) {
  const client = new Client(`http://${HOST}:${server.port}`, { headersTimeout: EVENT_TIMEOUT_MS, bodyTimeout: EVENT_TIMEOUT_MS });
  try {
    const res = await client.request({ path: pathAndQuery, method: 'POST', body: '', reset: true });
    await res.body.text();
    return `HTTP ${res.statusCode}`;
  } catch (err) {
    return failureKind(err);
  } finally {
    await client.destroy().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------
// Events: each is a list of steps; a step acts, then returns what to wait for (the workers it changes are ready
// or gone). `args` are tsgunicorn's extra arguments, or a Skip when the build lacks what the event needs.

/** Waits for `readyMore` more ready workers and `exitMore` more exits than when the step began. */
function moreWorkers(server, readyMore, exitMore) {
  const target = { ready: server.ready.length + readyMore, exited: server.exited.size + exitMore };
  return () => server.ready.length >= target.ready && server.exited.size >= target.exited;
}

/** A step that signals the serving master and waits for `readyMore` more ready workers and `exitMore` exits. */
function signalStep(signal, readyMore, exitMore) {
  return {
    name: signal,
    act(server) {
      const done = moreWorkers(server, readyMore, exitMore);
      process.kill(server.master, signal);
      return done;
    },
  };
}

/** SIGKILL of the oldest live worker, noting the connections it held (the requests in flight it may take along). */
const killStep = {
  name: 'kill -9',
  act(server, scenario) {
    const done = moreWorkers(server, 1, 1);
    const [victim] = liveWorkers(server);
    scenario.bound = connectionsHeld(victim, server.port, scenario.reusePort);
    process.kill(victim, 'SIGKILL');
    scenario.notes.push(`the killed worker held ${scenario.bound} connections${scenario.reusePort ? ' (queued on its socket included)' : ''}`);
    return done;
  },
};

/** --max-requests: no signal; waits until both workers have been replaced. */
const recycledStep = {
  name: 'max-requests',
  act: (server) => moreWorkers(server, WORKERS, WORKERS),
};

/** --max-worker-memory: one worker keeps BALLOON_MIB MiB, then its replacement is ready and it is gone. */
const balloonStep = {
  name: 'balloon',
  act(server, scenario) {
    const done = moreWorkers(server, 1, 1);
    sideRequest(server, `/balloon?mib=${BALLOON_MIB}`).then((outcome) => scenario.notes.push(`/balloon: ${outcome}`));
    return done;
  },
};

/** The first half of the upgrade: USR2, then the new master's workers ready (`<pidfile>.2` written). */
const usr2Step = {
  name: 'USR2',
  act(server, scenario) {
    const before = server.ready.length;
    process.kill(server.master, 'SIGUSR2');
    return () => {
      if (server.usr2Refused) throw new Skip('skipped: not in this build (USR2 only logs)');
      const newMasterReady = server.ready.slice(before).filter((r) => r.master === server.newMaster).length;
      return server.newMaster !== null && newMasterReady >= WORKERS && fs.existsSync(`${scenario.pidfile}.2`);
    };
  },
};

/** The second half: TERM of the old master, which exits after its workers; the new master is promoted. */
const termOldStep = {
  name: 'TERM old master',
  act(server) {
    const old = server.master;
    process.kill(old, 'SIGTERM');
    server.master = server.newMaster;
    return () => hasExited(old) && server.promoted === server.newMaster;
  },
};

/**
 * The stuck worker: POST /stuck on its own connection runs `while (true)`; the master aborts that worker after
 * --timeout and kills it 1 s later. Notes the time from the request to its exit, and the connections it held.
 */
const stuckStep = {
  name: 'stuck',
  act(server, scenario) {
    const sentAt = performance.now();
    const before = server.timedOut.length;
    sideRequest(server, '/stuck').then((outcome) => scenario.notes.push(`/stuck itself: ${outcome}`));
    let held = 0;
    let noted = false;
    return () => {
      const pid = server.timedOut[before];
      if (pid === undefined) return false;
      if (!server.exited.has(pid)) {
        held = Math.max(held, connectionsHeld(pid, server.port, scenario.reusePort));
        return false;
      }
      if (!noted) {
        noted = true;
        // The /stuck connection is one of them: the load's bound is the others.
        scenario.bound = Math.max(0, held - 1);
        scenario.notes.push(`the stuck worker was gone ${((server.exited.get(pid) - sentAt) / 1000).toFixed(1)} s after ` +
          `/stuck (--timeout ${STUCK_TIMEOUT_S}) and held ${held} connections`);
      }
      return liveWorkers(server).length >= WORKERS;
    };
  },
};

/** Skips an event whose flag this build lacks. */
const needsFlag = (flag, args) => (flags) => (flags.has(flag) ? args : new Skip('skipped: not in this build'));

/** The events, in the order they run: label, tsgunicorn's extra arguments, steps. */
const EVENTS = [
  { name: 'steady (no event)', args: () => [], steps: [] },
  { name: 'HUP', args: () => [], steps: [signalStep('SIGHUP', WORKERS, WORKERS)] },
  { name: 'TTIN', args: () => [], steps: [signalStep('SIGTTIN', 1, 0)] },
  { name: 'TTOU', args: () => [], steps: [signalStep('SIGTTOU', 0, 1)] },
  { name: 'kill -9 of a worker', args: () => [], steps: [killStep] },
  { name: `max-requests ${MAX_REQUESTS}`, args: () => ['--max-requests', String(MAX_REQUESTS)], steps: [recycledStep] },
  {
    name: `max-worker-memory ${MAX_WORKER_MEMORY_MIB}M`, steps: [balloonStep],
    args: needsFlag('max-worker-memory', ['--max-worker-memory', `${MAX_WORKER_MEMORY_MIB}M`]),
  },
  { name: 'USR2, TERM old master', args: (flags, scenario) => ['--pid', scenario.pidfile], steps: [usr2Step, termOldStep] },
  { name: `stuck worker (--timeout ${STUCK_TIMEOUT_S})`, args: () => ['--timeout', String(STUCK_TIMEOUT_S)], steps: [stuckStep] },
];

/**
 * Runs an event's steps from 1 s into the load, each at least 1 s after the previous one and once that one's
 * workers are ready (or gone). Resolves with the time the last one settled, and notes a step that timed out; a
 * Skip ends the scenario.
 */
async function runSteps(server, steps, loadStart, scenario) {
  let nextAt = loadStart + EVENT_GAP_MS;
  let settledAt = loadStart;
  for (const step of steps) {
    await sleep(Math.max(0, nextAt - performance.now()));
    const actedAt = performance.now();
    const done = step.act(server, scenario);
    try {
      await waitFor(server, done, EVENT_TIMEOUT_MS, step.name);
    } catch (err) {
      if (err instanceof Skip) throw err;
      scenario.notes.push(err.message);
    }
    settledAt = performance.now();
    nextAt = Math.max(actedAt + EVENT_GAP_MS, settledAt);
  }
  return settledAt;
}

// ---------------------------------------------------------------------------------------------------
// Scenarios.

/** The loads by name: issue 14's keep-alive load, and the same with a new connection per request. */
const LOADS = {
  'keep-alive': TORTURE_LOAD,
  fresh: { ...TORTURE_LOAD, clients: 8, fresh: true },
};

/**
 * One scenario: a fresh server, the load on it, the event's steps during the load; the load goes on for
 * BENCH_SECONDS and at least 1 s after the last step settled. Always stops the server.
 */
async function runScenario(s, flags) {
  const scenario = {
    pidfile: path.join(runDir, `${s.label.replace(/\W+/g, '-')}.pid`), reusePort: s.mode === 'reuse-port', notes: [], bound: 0,
  };
  const args = s.event.args(flags, scenario);
  if (args instanceof Skip) return { skipped: args.message };
  const server = await startServer(s.runtime, s.mode, args);
  const bootedBefore = server.workerPids.size;
  const load = startLoad(`http://${HOST}:${server.port}`, LOADS[s.load]);
  let counts;
  try {
    const loadStart = performance.now();
    const settledAt = await runSteps(server, s.event.steps, loadStart, scenario);
    await sleep(Math.max(loadStart + SECONDS * 1000, settledAt + EVENT_GAP_MS) - performance.now());
  } catch (err) {
    if (!(err instanceof Skip)) throw err;
    return { skipped: err.message };
  } finally {
    counts = await load.stop();
    await stopServer(server);
  }
  return { ...counts, ...scenario, booted: server.workerPids.size - bootedBefore, errors: server.errors };
}

/** Every scenario of the available runtimes, filtered by BENCH_CASES. */
function allScenarios(runtimes) {
  const scenarios = [];
  for (const runtime of runtimes) {
    for (const mode of runtime.modes) {
      for (const event of EVENTS) {
        for (const load of LOAD_NAMES) {
          const label = `${runtime.name} ${mode} ${event.name} ${load}`;
          if (!CASE_FILTER || CASE_FILTER.test(label)) scenarios.push({ runtime, mode, event, load, label });
        }
      }
    }
  }
  return scenarios;
}

/** Runs every scenario once (with the sysctl as it is now); a scenario that fails keeps its reason. */
async function runPass(scenarios) {
  const migrate = readMigrate();
  const results = new Map();
  const flagsOf = new Map();
  for (const [i, s] of scenarios.entries()) {
    log(`${MIGRATE_SYSCTL}=${migrate} ${i + 1}/${scenarios.length}: ${s.label} (${s.runtime.label})`);
    if (!flagsOf.has(s.runtime)) flagsOf.set(s.runtime, buildFlags(s.runtime));
    try {
      const r = await runScenario(s, flagsOf.get(s.runtime));
      results.set(s, r);
      log(r.skipped ? `  ${r.skipped}` : `  ${r.sent} sent, ${r.ok} ok, ${r.failed} failed${r.failed ? ` (${kindsText(r.kinds)})` : ''}, `
        + `${r.booted} workers booted${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`);
    } catch (err) {
      results.set(s, { error: err.message });
      log(`  FAILED: ${err.message}`);
    }
  }
  return { migrate, results };
}

// ---------------------------------------------------------------------------------------------------
// The report.

/** Markdown-safe cell text. */
const cell = (text) => String(text).replaceAll('|', '\\|');

/** A row's counts and verdict: 0 failed, or at most `bound` (the connections a killed or stuck worker held). */
function resultCells(result) {
  if (result.skipped) return `${cell(result.skipped)} | – | – | – | – |`;
  if (result.error) return `failed to run: ${cell(result.error)} | – | – | – | – |`;
  const verdict = result.failed <= result.bound ? '✓' : '✗';
  const bound = result.bound > 0 ? ` (≤ ${result.bound})` : '';
  return `${result.sent} | ${result.ok} | ${result.failed ? `**${result.failed}**` : 0}${bound} ${verdict} `
    + `| ${cell(kindsText(result.kinds)) || '–'} | ${cell(result.notes.join('; ')) || '–'} |`;
}

/** The Markdown table of one pass: a row per runtime, mode, event and load. */
function passTable(scenarios, pass) {
  const loads = LOAD_NAMES.length > 1;
  return [
    `### ${MIGRATE_SYSCTL} = ${pass.migrate}`,
    '',
    `| runtime | mode | event${loads ? ' | load' : ''} | sent | 2xx | failed | failure kinds | notes |`,
    `|---|---|---${loads ? '|---' : ''}|---:|---:|---|---|---|`,
    ...scenarios.map((s) => `| ${s.runtime.label} | ${s.mode} | ${s.event.name}${loads ? ` | ${s.load}` : ''} | `
      + resultCells(pass.results.get(s))),
  ].join('\n');
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
  const undiciVersion = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'undici', 'package.json'), 'utf8')).version;
  const { clients, slowEvery, slowMs, bodyBytes } = TORTURE_LOAD;
  return [
    `Machine: nproc ${os.availableParallelism()}, ${os.platform()} ${os.release()}; ${runtimes.map((rt) => rt.label).join(', ')}; `
      + `tsgunicorn ${commit}; ${new Date().toISOString()}`,
    `Each row: tsgunicorn -w ${WORKERS} -b ${HOST}:0 on scripts/torture-app.ts; load for ${SECONDS} s at least (and 1 s `
      + `past the event) with undici ${undiciVersion}: ${clients} keep-alive connections POSTing ${bodyBytes}-byte bodies, `
      + `one request in ${slowEvery} answered ${slowMs} ms later, every answer checked against its body`
      + `${LOAD_NAMES.includes('fresh') ? ` (fresh: ${LOADS.fresh.clients} clients, a new connection per request)` : ''}. The event 1 s into the `
      + 'load; each step once the previous one\'s workers were ready (or gone). Modes: inherit = --no-reuse-port, '
      + 'reuse-port = --reuse-port. failed = sent − 2xx; ✓ when it is 0, or for a killed or stuck worker at most the '
      + 'connections it held (one request in flight each; the stuck one\'s own request not counted).',
    '',
    ...passes.flatMap((pass) => [passTable(scenarios, pass), '']),
    errorSummary(passes),
    '',
  ].join('\n');
}

/** Runs the passes: once, or with --migrate at 0 and then 1, restoring the sysctl afterwards. */
async function runPasses(scenarios) {
  if (!MIGRATE) return [await runPass(scenarios)];
  const original = readMigrate();
  if (original === 'n/a') throw new Error(`--migrate: this kernel has no ${MIGRATE_SYSCTL}`);
  const passes = [];
  try {
    for (const value of ['0', '1']) {
      sysctlToRestore = original;
      writeMigrate(value);
      passes.push(await runPass(scenarios));
    }
  } finally {
    restoreMigrate();
  }
  return passes;
}

/** Finds the runtimes, runs the passes, prints (and saves) the report. */
async function main() {
  const unknownLoad = LOAD_NAMES.find((name) => !LOADS[name]);
  if (unknownLoad) throw new Error(`BENCH_LOADS: no load named ${unknownLoad} (${Object.keys(LOADS).join(', ')})`);
  const runtimes = RUNTIMES.map((name) => {
    const rt = tsgunicornRuntime(name);
    if (!rt) log(`${name}: not available (unknown name or binary not found${name === 'node26' ? '; NEWER_NODE, or npm run test:newer-node installs it' : ''}), skipped`);
    else if (rt.modes.length === 0) log(`${name}: ${rt.label} has no reuse-port (Node 22.12+), skipped`);
    return rt?.modes.length ? rt : null;
  }).filter(Boolean);
  if (runtimes.some((rt) => rt.command[0].endsWith('.js')) && !fs.existsSync(path.join(ROOT, 'dist', 'tsgunicorn.js'))) {
    throw new Error('dist/tsgunicorn.js is missing: run npm run build');
  }
  const scenarios = allScenarios(runtimes);
  if (scenarios.length === 0) throw new Error('no scenario to run (BENCH_RUNTIMES, BENCH_CASES, BENCH_LOADS)');
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgunicorn-torture-'));
  log(`${scenarios.length} scenarios${MIGRATE ? ` × 2 (${MIGRATE_SYSCTL} 0 and 1)` : ''}, ${SECONDS} s of load each at least`);
  const markdown = report(runtimes, scenarios, await runPasses(scenarios));
  process.stdout.write(markdown);
  if (process.env.BENCH_OUT) {
    fs.writeFileSync(path.resolve(process.env.BENCH_OUT), markdown);
    log(`wrote ${path.resolve(process.env.BENCH_OUT)}`);
  }
}

/** Stops every server still running, puts the sysctl back and removes the run's folder. */
async function cleanUp() {
  await Promise.all([...live].map(stopServer));
  restoreMigrate();
  if (runDir) fs.rmSync(runDir, { recursive: true, force: true });
  runDir = null;
}

// Ctrl-C or a kill of the script still stops every server and puts the sysctl back (first thing).
await runMain(main, { log, cleanUp, onSignal: restoreMigrate });
