/**
 * Test harness: starts the real tsgunicorn CLI under node, deno or bun, reads its log, sends requests over
 * loopback, and kills every process it started (master and workers) by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The npm devDependencies' executables (deno, bun). */
export const BIN = path.join(ROOT, 'node_modules', '.bin');

/** How each runtime runs a script (Node gets the TypeScript hooks for .ts scripts). */
export function runtimeCommand(runtime: string, script: string): string[] {
  if (runtime === 'node') {
    const hooks = script.endsWith('.ts') ? ['--import', path.join(ROOT, 'scripts', 'register-typescript.mjs')] : [];
    return [process.execPath, ...hooks, script];
  }
  if (runtime === 'deno') return [path.join(BIN, 'deno'), 'run', '-A', script];
  if (runtime === 'bun') return [path.join(BIN, 'bun'), script];
  throw new Error(`unknown runtime ${runtime}`);
}

/** The runtimes to test: TSGUNICORN_TEST_RUNTIMES=node,deno,bun (default all three). */
export const TEST_RUNTIMES = (process.env.TSGUNICORN_TEST_RUNTIMES ?? 'node,deno,bun').split(',').filter(Boolean);

/** A runtime and the serving mode its workers use: inherit (the master's sockets) or reuse-port (their own). */
export interface TestTarget {
  runtime: string;
  mode: 'inherit' | 'reuse-port';
  /** `bun reuse-port`, for test names. */
  name: string;
}

/** Node serves reuse-port from 22.12 on; the tests run the CLI with the Node that runs them. */
function nodeHasReusePort(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/**
 * Every runtime in every mode it offers (TSGUNICORN_TEST_MODES=inherit,reuse-port, default both): the
 * integration tests run once per target.
 */
export const TEST_TARGETS: TestTarget[] = TEST_RUNTIMES.flatMap((runtime) => {
  const modes = (process.env.TSGUNICORN_TEST_MODES ?? 'inherit,reuse-port').split(',') as TestTarget['mode'][];
  return modes
    .filter((mode) => mode === 'inherit' || runtime !== 'node' || nodeHasReusePort())
    .map((mode) => ({ runtime, mode, name: `${runtime} ${mode}` }));
});

/**
 * How many targets' tests one file runs at the same time (TSGUNICORN_TEST_TARGETS_AT_ONCE, default 2): a target's
 * tests spend most of their time waiting (a boot, a drain, a timeout), not computing.
 */
export const TARGETS_AT_ONCE = Math.max(1, Number(process.env.TSGUNICORN_TEST_TARGETS_AT_ONCE ?? 2) || 1);

/**
 * Registers `body`'s tests once per item under one describe(`title`), each item's under a describe of its name:
 * the items TARGETS_AT_ONCE at a time, each item's own tests one after another, as they were written.
 */
function describeConcurrently<T>(title: string, items: T[], nameOf: (item: T) => string, body: (item: T) => void): void {
  describe(title, { concurrency: TARGETS_AT_ONCE }, () => {
    for (const item of items) describe(nameOf(item), { concurrency: 1 }, () => body(item));
  });
}

/**
 * Registers `body`'s tests once per target, the targets TARGETS_AT_ONCE at a time (describeConcurrently). Every
 * server gets its own ports, pids and runtime directory, so the targets share nothing but the machine.
 */
export const describeEachTarget = (title: string, body: (target: TestTarget) => void) => describeConcurrently(title, TEST_TARGETS, (target) => target.name, body);

/** Registers `body`'s tests once per runtime of TEST_RUNTIMES, TARGETS_AT_ONCE at a time (describeConcurrently). */
export const describeEachRuntime = (title: string, body: (runtime: string) => void) => describeConcurrently(title, TEST_RUNTIMES, (runtime) => runtime, body);

/**
 * Whether a target serves with the runtime's own HTTP server (Deno.serve, Bun.serve in reuse-port mode), whose
 * parser reads the connection's bytes and cannot be configured.
 */
export const servesNatively = (target: TestTarget) => target.mode === 'reuse-port' && target.runtime !== 'node';

/** What tests pass where a runtime is expected: a runtime name (its default mode) or a target. */
export type Runnable = string | TestTarget;

function commandFor(target: Runnable, script: string): string[] {
  if (typeof target === 'string') return runtimeCommand(target, script);
  return [...runtimeCommand(target.runtime, script), target.mode === 'reuse-port' ? '--reuse-port' : '--no-reuse-port'];
}

/** How each runtime starts the CLI: dist/tsgunicorn.js on Node (as `npx tsgunicorn` does), cli.ts on Deno and Bun. */
export const cliCommand = (target: Runnable) => {
  const runtime = typeof target === 'string' ? target : target.runtime;
  return commandFor(target, path.join(ROOT, runtime === 'node' ? 'dist/tsgunicorn.js' : 'cli.ts'));
};

/** A fixture file's absolute path. */
export const fixture = (name: string) => path.join(ROOT, 'test', 'fixtures', name);

/** Sleeps. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits for `promise` to settle, at most `ms`. The timer is cleared once the promise wins: a pending timer keeps
 * the test file's process alive after its last test, and the runner's slot with it.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The XDG_RUNTIME_DIRs of the processes the tests start live here, so that the servers' default control sockets
 * (tsgunicorn-NAME.ctl) stay out of the home directory; removed when the test process exits.
 */
const RUNTIME_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgunicorn-run-'));
process.on('exit', () => fs.rmSync(RUNTIME_DIR, { recursive: true, force: true }));

/**
 * A fresh XDG_RUNTIME_DIR for one process: servers of one file run at the same time (describeEachTarget), and two
 * masters of the same app would otherwise share a default control socket path.
 */
const ownRuntimeDir = () => fs.mkdtempSync(path.join(RUNTIME_DIR, 'process-'));

/** A fresh temporary directory, removed by the caller. */
export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tsgunicorn-test-'));
}

/**
 * How long the helpers wait for a server to get somewhere (a boot, a log line, an exit) unless told otherwise:
 * generous, as a passing test never waits for it, and on a loaded 2-core machine a worker's boot took over 15 s.
 */
const PATIENCE_MS = 60000;

/** Polls `check` every 50 ms until it returns a value other than undefined, for at most `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = PATIENCE_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The result of a CLI run that is expected to end by itself. */
export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (bounded by timeoutMs, default PATIENCE_MS, then SIGKILL). */
export function runCli(runtime: Runnable, args: string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const [command, ...prefix] = cliCommand(runtime);
  const child = spawn(command, [...prefix, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: ownRuntimeDir(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? PATIENCE_MS);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** How a test starts a server. */
export interface StartOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Workers to wait for (default 1). */
  workers?: number;
  /** fds handed to the master as its fds 3, 4, … */
  extraFds?: number[];
  /** The --error-logfile the server writes to: its lines count as log lines too. */
  logFile?: string;
  /** Starts the master as a process group leader (its workers join the group), as a shell job is. */
  detached?: boolean;
}

/** A running tsgunicorn master started by a test. */
export class Server {
  readonly child: ChildProcess;
  readonly #streamLines: string[] = [];
  readonly #logFile?: string;
  exit?: { code: number | null; signal: string | null };
  #exited: Promise<void>;

  private constructor(command: string[], args: string[], options: StartOptions) {
    this.#logFile = options.logFile;
    this.child = spawn(command[0], [...command.slice(1), ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, XDG_RUNTIME_DIR: ownRuntimeDir(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe', ...(options.extraFds ?? [])],
      detached: options.detached ?? false,
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let rest = '';
      stream.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString()).split('\n');
        rest = parts.pop()!;
        this.#streamLines.push(...parts);
      });
    }
    this.#exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  /** Starts the CLI with `args` (add `-b 127.0.0.1:0` yourself) and waits until `workers` workers are ready. */
  static start(runtime: Runnable, args: string[], options: StartOptions = {}): Promise<Server> {
    return Server.launch(cliCommand(runtime), args, options);
  }

  /** Starts a script that calls serve() itself, the same way. */
  static startScript(runtime: Runnable, script: string, args: string[], options: StartOptions = {}): Promise<Server> {
    return Server.launch(commandFor(runtime, script), args, options);
  }

  /** Starts any command line (an executable made by `tsgunicorn build`, say), the same way. */
  static startCommand(command: string[], args: string[], options: StartOptions = {}): Promise<Server> {
    return Server.launch(command, args, options);
  }

  private static async launch(command: string[], args: string[], options: StartOptions): Promise<Server> {
    const server = new Server(command, ['--log-level', 'debug', ...args], options);
    try {
      await server.waitForReady(options.workers ?? 1);
    } catch (error) {
      await server.kill();
      throw new Error(`${(error as Error).message}\n--- server log ---\n${server.lines.join('\n')}`);
    }
    return server;
  }

  /** Every stderr and stdout line so far, then those of the log file. */
  get lines(): string[] {
    if (!this.#logFile || !fs.existsSync(this.#logFile)) return this.#streamLines;
    return [...this.#streamLines, ...fs.readFileSync(this.#logFile, 'utf8').split('\n')];
  }

  /** The master's pid: the one it logs, which differs from the child's behind a wrapper such as npx. */
  get pid(): number {
    const logged = this.matches(/Listening at: \S+ \((\d+)\)/)[0];
    return logged ? Number(logged[1]) : this.child.pid!;
  }

  /** The first TCP listener's base URL (http://127.0.0.1:PORT, https:// with TLS). */
  get url(): string {
    const line = this.lines.find((l) => /Listening at: https?:\/\//.test(l));
    if (!line) throw new Error('no TCP listener logged');
    return /Listening at: (https?:\/\/\S+)/.exec(line)![1];
  }

  /** Lines matching `pattern`, with their captures. */
  matches(pattern: RegExp): RegExpExecArray[] {
    return this.lines.map((line) => pattern.exec(line)).filter((m): m is RegExpExecArray => m !== null);
  }

  /** Pids of the workers that said they are ready and have not been reported gone. */
  liveWorkers(): number[] {
    const ready = this.matches(/Worker \(pid:(\d+)\) is ready/).map((m) => Number(m[1]));
    const gone = new Set([
      ...this.matches(/Worker exiting \(pid: (\d+)\)/).map((m) => Number(m[1])),
      ...this.matches(/Worker \(pid:(\d+)\) (was sent|exited)/).map((m) => Number(m[1])),
    ]);
    return [...new Set(ready)].filter((pid) => !gone.has(pid));
  }

  /** Every worker pid ever logged as booting. */
  allWorkerPids(): number[] {
    return this.matches(/Booting worker with pid: (\d+)/).map((m) => Number(m[1]));
  }

  /** Every worker pid the master logged spawning (at debug level), booted or not yet. */
  spawnedWorkerPids(): number[] {
    return this.matches(/Spawned worker \(pid:(\d+)\)/).map((m) => Number(m[1]));
  }

  /** Waits until exactly `count` workers are live. */
  waitForReady(count: number, timeoutMs = PATIENCE_MS): Promise<number[]> {
    return waitFor(`${count} ready workers`, () => {
      if (this.exit) throw new Error(`server exited early: ${JSON.stringify(this.exit)}`);
      const live = this.liveWorkers();
      return live.length === count && this.lines.some((l) => l.includes('Listening at:')) ? live : undefined;
    }, timeoutMs);
  }

  /** Waits for a log line matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs = PATIENCE_MS): Promise<RegExpExecArray> {
    return waitFor(`a log line matching ${pattern}`, () => this.matches(pattern)[0], timeoutMs);
  }

  /** Sends a signal to the master. */
  signal(signal: NodeJS.Signals): void {
    process.kill(this.pid, signal);
  }

  /** Waits for the master to exit (bounded). */
  async waitForExit(timeoutMs = PATIENCE_MS): Promise<{ code: number | null; signal: string | null }> {
    await settleWithin(this.#exited, timeoutMs);
    if (!this.exit) throw new Error(`master did not exit within ${timeoutMs} ms\n${this.lines.join('\n')}`);
    return this.exit;
  }

  /** Every new master a USR2 started (they outlive the master the test started, detached). */
  newMasterPids(): number[] {
    return this.matches(/started a new master \(pid:(\d+)\)/).map((m) => Number(m[1]));
  }

  /** Kills the new masters of USR2 upgrades, the master and every worker they logged, by pid (test cleanup). */
  async kill(): Promise<void> {
    for (const pid of new Set([...this.newMasterPids(), this.child.pid!, this.pid, ...this.allWorkerPids(), ...this.spawnedWorkerPids()])) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await settleWithin(this.#exited, 5000);
  }
}

/** A response as the tests look at it. */
export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Options of fetchText. */
export interface FetchOptions {
  method?: string;
  body?: string;
  timeoutMs?: number;
  headers?: Record<string, string>;
  socketPath?: string;
  /** Reuse connections from this pool instead of one fresh connection per request. */
  keepAlive?: Agent;
}

/** One request, on a fresh connection (Connection: close) unless a keep-alive pool is given; bounded by timeoutMs. */
export async function fetchText(url: string, options: FetchOptions = {}): Promise<Reply> {
  const dispatcher = options.keepAlive ?? (options.socketPath ? unixAgent(options.socketPath) : undefined);
  const response = await request(url, {
    method: (options.method ?? 'GET') as 'GET',
    body: options.body,
    headers: options.headers,
    reset: !options.keepAlive,
    headersTimeout: options.timeoutMs ?? 10000,
    bodyTimeout: options.timeoutMs ?? 10000,
    ...(dispatcher ? { dispatcher } : {}),
  });
  return { status: response.statusCode, body: await response.body.text(), headers: response.headers };
}

const unixAgents = new Map<string, Agent>();
function unixAgent(socketPath: string): Agent {
  let agent = unixAgents.get(socketPath);
  if (!agent) unixAgents.set(socketPath, (agent = new Agent({ connect: { socketPath } })));
  return agent;
}

/** The pid a fixture app reports in its body (`pid=N`). */
export function pidOf(reply: Reply): number {
  const match = /pid=(\d+)/.exec(reply.body);
  if (!match) throw new Error(`no pid in ${JSON.stringify(reply.body)}`);
  return Number(match[1]);
}

/** A background loop of requests, one after another, each on a fresh connection. */
export interface RequestLoop {
  /** Waits for the request in flight to finish and holds the loop (to SIGKILL a worker that is idle). */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<{ ok: number; failed: string[]; pids: Set<number> }>;
}

/** Sends requests one after another until `stop()` (at most `limit`), counting failures and answering pids. */
export function requestLoop(url: string, limit = 5000, keepAlive?: Agent): RequestLoop {
  let running = true;
  let gate: Promise<void> | undefined;
  let openGate = () => {};
  let paused = () => {};
  const result = { ok: 0, failed: [] as string[], pids: new Set<number>() };
  const loop = (async () => {
    for (let i = 0; i < limit && running; i++) {
      if (gate) {
        paused();
        await gate;
      }
      try {
        const reply = await fetchText(url, { keepAlive });
        if (reply.status === 200) {
          result.ok++;
          result.pids.add(pidOf(reply));
        } else {
          result.failed.push(`status ${reply.status}`);
        }
      } catch (error) {
        result.failed.push((error as Error).message);
      }
    }
  })();
  return {
    pause() {
      gate = new Promise((resolve) => (openGate = resolve));
      return new Promise((resolve) => (paused = resolve));
    },
    resume() {
      gate = undefined;
      openGate();
    },
    async stop() {
      running = false;
      this.resume();
      await loop;
      return result;
    },
  };
}

/** Runs `body` against a started server, appends the server's log to any failure, and always kills it. */
export async function withRunningServer(server: Server | Promise<Server>, body: (server: Server) => Promise<void>): Promise<void> {
  const running = await server;
  try {
    await body(running);
  } catch (error) {
    throw new Error(`${(error as Error).stack}\n--- server log ---\n${running.lines.join('\n')}`);
  } finally {
    await running.kill();
  }
}

/** Whether a process runs and is not a zombie (a zombie still answers kill(0); its /proc state says Z). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
