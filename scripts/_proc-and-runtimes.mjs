// Helpers shared by the report scripts (bench.mjs, torture.mjs, test-newer-node.mjs): progress logging, short commands,
// /proc readings, and how to run tsgunicorn and a script on each runtime (node, deno, bun).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder (the parent of scripts/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A progress logger writing "[tag] message" lines to stderr, so that stdout is only the report. */
export function progressLog(tag) {
  return (message) => process.stderr.write(`[${tag}] ${message}\n`);
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a short command synchronously in ROOT (bounded), returning trimmed stdout or null on failure. */
export function capture(cmd, args, timeoutMs = 20_000) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * Runs a report script's `main`, then `cleanUp()` whatever happens; an error is logged and sets exit code 1.
 * On SIGINT, SIGTERM or SIGHUP it logs, calls `onSignal()` at once, runs `cleanUp()` and exits with 130.
 */
export async function runMain(main, { log, cleanUp, onSignal = () => {} }) {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      log(`${signal}: stopping servers`);
      onSignal();
      cleanUp().finally(() => process.exit(130));
    });
  }
  try {
    await main();
  } catch (err) {
    log(`error: ${err.stack ?? err}`);
    process.exitCode = 1;
  } finally {
    await cleanUp();
  }
}

// ---------------------------------------------------------------------------------------------------
// /proc readings.

/** The fields of /proc/PID/stat after the command name (field 3, the state, onwards), or null when gone. */
export function statFields(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Identifies a process instance: its start time (field 22), so that a reused pid is never signalled. */
export function startTime(pid) {
  return statFields(pid)?.[19] ?? null;
}

/** Direct children of `pid`, from /proc/PID/task/*\/children, or `ps --ppid` where that file is missing. */
export function childrenOf(pid) {
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

// ---------------------------------------------------------------------------------------------------
// Runtimes.

/** The path of an executable named `name` on PATH, or null. */
export function onPath(name) {
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

/** Where `npm run test:newer-node` installs the newer Node (the npm package `node@26`), and torture.mjs finds it. */
export const NEWER_NODE_PREFIX = path.join(ROOT, 'node_modules', '.cache', 'newer-node');
/** That Node's executable. */
export const NEWER_NODE_BIN = path.join(NEWER_NODE_PREFIX, 'node_modules', '.bin', 'node');

/** The project-local binary in node_modules/.bin, else one on PATH. */
function localBin(name) {
  const local = path.join(ROOT, 'node_modules', '.bin', name);
  return fs.existsSync(local) ? local : onPath(name);
}

/** Whether a Node version ("22.12.0") can open SO_REUSEPORT sockets (`reusePort`, Node 22.12+ / 23.1+). */
export function nodeHasReusePort(version) {
  const [major, minor] = version.split('.').map(Number);
  return major >= 24 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** A Node runtime from its binary (default: the Node running this script), as describeRuntime gives it. */
export function nodeRuntime(bin = process.execPath) {
  const version = (bin === process.execPath ? process.version : capture(bin, ['--version']))?.replace(/^v/, '');
  return version ? {
    name: 'node', bin, version,
    run: (file, args) => ({ bin, args: [file, ...args] }),
    cli: path.join(ROOT, 'dist', 'tsgunicorn.js'),
  } : null;
}

/**
 * How to run each runtime: its binary, version, `run(file, args, denoFlags)` giving the command for a script
 * (Deno-only flags are ignored elsewhere), and the tsgunicorn entry point `cli` (dist/tsgunicorn.js on Node, cli.ts
 * elsewhere). An unknown name, or a runtime whose binary is missing, gives null.
 */
export function describeRuntime(name) {
  if (name === 'node') return nodeRuntime();
  if (name === 'deno') {
    const bin = localBin('deno');
    const version = bin && capture(bin, ['--version'])?.match(/deno (\S+)/)?.[1];
    return version ? {
      name, bin, version,
      run: (file, args, denoFlags = []) => ({ bin, args: ['run', '-A', ...denoFlags, file, ...args] }),
      cli: path.join(ROOT, 'cli.ts'),
    } : null;
  }
  if (name === 'bun') {
    const bin = localBin('bun');
    const version = bin && capture(bin, ['--version']);
    return version ? {
      name, bin, version,
      run: (file, args) => ({ bin, args: [file, ...args] }),
      cli: path.join(ROOT, 'cli.ts'),
    } : null;
  }
  return null;
}
