/**
 * The arbiter (master): holds the listening sockets, keeps the configured number of workers alive, kills the
 * ones whose heartbeat stops, and handles Gunicorn's signals (TERM, INT/QUIT, HUP, TTIN/TTOU, USR1).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { type ConfigSources, resolveSettings } from './config.ts';
import { Logger } from './glogging.ts';
import { EXIT, type MasterMessage, WORKER_ENV, type WorkerBoot, type WorkerMessage } from './messages.ts';
import { Pidfile } from './pidfile.ts';
import type { Runtime } from './runtime/index.ts';
import type { Settings } from './settings.ts';
import { createListeners, type Listener } from './sock.ts';
import { processTitle } from './worker.ts';
import { VERSION } from './version.ts';

/** The master's view of one worker process. */
interface WorkerProcess {
  pid: number;
  child: ChildProcess;
  /** Stable slot 0..N-1 (TSGUNICORN_WORKER_ID). */
  id: number;
  /** Spawn order; the oldest worker is retired first. */
  age: number;
  /** Config generation it was spawned with; HUP starts a new one. */
  generation: number;
  ready: boolean;
  /** performance.now() of the last message (heartbeat) from it. */
  lastSeen: number;
  abortedAt?: number;
  /** Set once the worker was asked to stop (or announced it retires): SIGKILL after this time. */
  killAt?: number;
  requests: number;
}

interface StopState {
  graceful: boolean;
  deadline: number;
  killed: boolean;
}

const TICK_MS = 200;
/** How long a worker told to abort (timeout) or to stop quickly gets before SIGKILL. */
const ABORT_GRACE_MS = 1000;
const QUICK_STOP_MS = 2000;

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

/** The master process. */
export class Arbiter {
  settings: Settings;
  readonly sources: ConfigSources;
  readonly runtime: Runtime;
  logger: Logger;
  listeners: Listener[] = [];
  readonly workers = new Map<number, WorkerProcess>();
  /** How many workers should run (workers, changed by TTIN/TTOU). */
  target: number;
  private generation = 0;
  private age = 0;
  private stopState?: StopState;
  private pidfile?: Pidfile;
  private exitCode: number = EXIT.OK;
  private haltReason?: string;
  private finish?: (code: number) => void;
  private tick?: ReturnType<typeof setInterval>;
  private readonly signalHandlers = new Map<string, () => void>();

  constructor(settings: Settings, sources: ConfigSources, runtime: Runtime, logger: Logger) {
    this.settings = settings;
    this.sources = sources;
    this.runtime = runtime;
    this.logger = logger;
    this.target = settings.workers;
  }

  /** Binds, spawns the workers and supervises them; resolves with the exit status once the master stops. */
  async run(): Promise<number> {
    const { settings, logger } = this;
    this.applyEnv([], settings.env);
    if (settings.pidfile) {
      this.pidfile = new Pidfile(settings.pidfile);
      this.pidfile.create();
    }
    this.runtime.setProcessTitle(processTitle('master', settings.procName, settings.app));
    logger.info(`Starting tsgunicorn ${VERSION} (${this.runtime.name} ${this.runtime.version})`);
    try {
      this.listeners = await createListeners(settings.bind, { runtime: this.runtime, backlog: settings.backlog, logger });
    } catch (error) {
      this.pidfile?.unlink();
      throw error;
    }
    for (const listener of this.listeners) logger.info(`Listening at: ${listener.url} (${process.pid})`);
    logger.info(`Using worker: node:http on inherited sockets (${this.runtime.name})`);
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    this.installSignals();
    this.manageWorkers();
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    return done;
  }

  private installSignals(): void {
    for (const signal of SIGNALS) {
      const handler = () => this.onSignal(signal);
      this.signalHandlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  private onSignal(signal: (typeof SIGNALS)[number]): void {
    this.logger.info(`Handling signal: ${signal.slice(3).toLowerCase()}`);
    switch (signal) {
      case 'SIGTERM':
        if (this.stopState) this.escalate();
        else this.stop(true);
        break;
      case 'SIGINT':
      case 'SIGQUIT':
        if (this.stopState) this.escalate();
        else this.stop(false);
        break;
      case 'SIGHUP':
        void this.reload();
        break;
      case 'SIGTTIN':
        this.target++;
        this.manageWorkers();
        break;
      case 'SIGTTOU':
        this.target = Math.max(1, this.target - 1);
        this.manageWorkers();
        break;
      case 'SIGUSR1':
        this.logger.reopenFiles();
        for (const worker of this.workers.values()) this.send(worker, { type: 'reopen-logs' });
        break;
      case 'SIGUSR2':
        this.logger.warning('USR2 binary upgrade is not supported yet; use HUP to replace the workers');
        break;
      case 'SIGWINCH':
        break;
    }
  }

  private send(worker: WorkerProcess, message: MasterMessage): void {
    try {
      if (worker.child.connected) {
        worker.child.send(message);
        return;
      }
    } catch {
      // The channel closed under us: fall back to a signal below.
    }
    if (message.type === 'stop') this.kill(worker, message.graceful ? 'SIGTERM' : 'SIGQUIT');
  }

  private kill(worker: WorkerProcess, signal: NodeJS.Signals): void {
    try {
      process.kill(worker.pid, signal);
    } catch {
      // Already gone; its exit event reaps it.
    }
  }

  private spawnWorker(id: number): void {
    const { settings } = this;
    const jitter = settings.maxRequestsJitter > 0 ? randomInt(0, settings.maxRequestsJitter + 1) : 0;
    const passing = this.runtime.passListeners(this.listeners.map((listener) => listener.fd));
    const boot: WorkerBoot = {
      id,
      settings,
      fds: passing.workerFds,
      maxRequests: settings.maxRequests > 0 ? settings.maxRequests + jitter : 0,
    };
    const { command, args } = this.runtime.workerCommand();
    const child = spawn(command, args, {
      stdio: ['ignore', 'inherit', 'inherit', ...passing.stdio, 'ipc'],
      env: { ...process.env, [WORKER_ENV]: JSON.stringify(boot) },
    });
    if (child.pid === undefined) {
      child.on('error', (error) => this.logger.error(`Cannot start a worker (${command}): ${error.message}`));
      this.halt('Worker failed to boot.', EXIT.WORKER_BOOT_ERROR);
      return;
    }
    const worker: WorkerProcess = {
      pid: child.pid, child, id, age: ++this.age, generation: this.generation, ready: false,
      lastSeen: performance.now(), requests: 0,
    };
    this.workers.set(worker.pid, worker);
    child.on('message', (message: WorkerMessage) => this.onWorkerMessage(worker, message));
    child.on('exit', (code, signal) => this.onWorkerExit(worker, code, signal));
    child.on('error', (error) => this.logger.error(`Worker (pid:${worker.pid}): ${error.message}`));
  }

  private onWorkerMessage(worker: WorkerProcess, message: WorkerMessage): void {
    worker.lastSeen = performance.now();
    if (message.type === 'ready') {
      worker.ready = true;
      this.logger.debug(`Worker (pid:${worker.pid}) is ready`);
      this.manageWorkers();
    } else if (message.type === 'heartbeat') {
      worker.requests = message.requests;
    } else if (message.type === 'retiring' && worker.killAt === undefined) {
      worker.killAt = performance.now() + this.settings.gracefulTimeout * 1000 + ABORT_GRACE_MS;
      this.manageWorkers();
    }
  }

  private onWorkerExit(worker: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(worker.pid);
    const { logger } = this;
    logger.debug(`Worker (pid:${worker.pid}) exited; it had served ${worker.requests} requests at its last heartbeat`);
    if (signal === 'SIGKILL') logger.error(`Worker (pid:${worker.pid}) was sent SIGKILL! Perhaps out of memory?`);
    else if (signal === 'SIGTERM') logger.info(`Worker (pid:${worker.pid}) was sent SIGTERM!`);
    else if (signal) logger.warning(`Worker (pid:${worker.pid}) was sent ${signal}!`);
    else if (code !== 0) logger.error(`Worker (pid:${worker.pid}) exited with code ${code}.`);
    if (!this.stopState && code === EXIT.APP_LOAD_ERROR) this.halt('App failed to load.', EXIT.APP_LOAD_ERROR);
    else if (!this.stopState && code === EXIT.WORKER_BOOT_ERROR) this.halt('Worker failed to boot.', EXIT.WORKER_BOOT_ERROR);
    if (this.stopState) {
      if (this.workers.size === 0) this.finishStop();
    } else {
      this.manageWorkers();
    }
  }

  /** Spawns missing workers, retires surplus ones (oldest first) and, after a reload, the old generation. */
  private manageWorkers(): void {
    if (this.stopState) return;
    const all = [...this.workers.values()];
    const current = all.filter((w) => w.generation === this.generation && w.killAt === undefined);
    const usedSlots = new Set(current.map((w) => w.id));
    for (let count = current.length; count < this.target; count++) {
      let slot = 0;
      while (usedSlots.has(slot)) slot++;
      usedSlots.add(slot);
      this.spawnWorker(slot);
      if (this.stopState) return;
    }
    const surplus = current.sort((a, b) => a.age - b.age).slice(0, Math.max(0, current.length - this.target));
    for (const worker of surplus) this.stopWorker(worker, true);
    const readyCurrent = current.filter((w) => w.ready && !surplus.includes(w)).length;
    if (readyCurrent >= this.target) {
      for (const worker of all) {
        if (worker.generation !== this.generation && worker.killAt === undefined) this.stopWorker(worker, true);
      }
    }
  }

  private stopWorker(worker: WorkerProcess, graceful: boolean): void {
    const grace = graceful ? this.settings.gracefulTimeout * 1000 + ABORT_GRACE_MS : QUICK_STOP_MS;
    worker.killAt = Math.min(worker.killAt ?? Infinity, performance.now() + grace);
    this.send(worker, { type: 'stop', graceful });
  }

  private onTick(): void {
    const now = performance.now();
    const timeoutMs = this.settings.timeout * 1000;
    for (const worker of this.workers.values()) {
      if (worker.killAt !== undefined && now >= worker.killAt) {
        this.kill(worker, 'SIGKILL');
        worker.killAt = Infinity;
      }
      if (timeoutMs <= 0 || this.stopState?.killed) continue;
      if (worker.abortedAt === undefined && now - worker.lastSeen > timeoutMs) {
        this.logger.critical(`WORKER TIMEOUT (pid:${worker.pid})`);
        worker.abortedAt = now;
        this.send(worker, { type: 'abort' });
      } else if (worker.abortedAt !== undefined && now - worker.abortedAt >= ABORT_GRACE_MS && worker.killAt !== Infinity) {
        this.kill(worker, 'SIGKILL');
        worker.killAt = Infinity;
      }
    }
    const stop = this.stopState;
    if (stop && !stop.killed && now >= stop.deadline) {
      stop.killed = true;
      for (const worker of this.workers.values()) this.kill(worker, 'SIGKILL');
      setTimeout(() => this.finishStop(), QUICK_STOP_MS).unref?.();
    }
  }

  /** Stops the master: closes the listeners, stops every worker (gracefully or not), then exits. */
  stop(graceful: boolean): void {
    if (this.stopState) return;
    const grace = graceful ? this.settings.gracefulTimeout * 1000 : QUICK_STOP_MS;
    this.stopState = { graceful, deadline: performance.now() + grace, killed: false };
    for (const listener of this.listeners) listener.close();
    for (const worker of this.workers.values()) this.send(worker, { type: 'stop', graceful });
    if (this.workers.size === 0) this.finishStop();
  }

  /** A second TERM/INT during a graceful stop: tell the workers to quit now and kill them two seconds later. */
  private escalate(): void {
    const stop = this.stopState!;
    stop.graceful = false;
    stop.deadline = Math.min(stop.deadline, performance.now() + QUICK_STOP_MS);
    for (const worker of this.workers.values()) this.send(worker, { type: 'stop', graceful: false });
  }

  /** Stops everything because of a fatal condition (a worker failed to boot) and exits with `code`. */
  halt(reason: string, code: number): void {
    this.haltReason = reason;
    this.exitCode = code;
    this.stop(false);
  }

  private finishStop(): void {
    if (!this.finish) return;
    clearInterval(this.tick);
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    this.logger.info('Shutting down: Master');
    if (this.haltReason) this.logger.info(`Reason: ${this.haltReason}`);
    this.pidfile?.unlink();
    const finish = this.finish;
    this.finish = undefined;
    finish(this.exitCode);
  }

  /** Sets the -e/--env variables, removing the ones a previous configuration set and no longer does. */
  private applyEnv(previous: string[], next: string[]): void {
    for (const entry of previous) delete process.env[entry.slice(0, entry.indexOf('='))];
    for (const entry of next) {
      const at = entry.indexOf('=');
      process.env[entry.slice(0, at)] = entry.slice(at + 1);
    }
  }

  /** HUP: re-reads the configuration and replaces every worker with a new one, without closing the sockets. */
  async reload(): Promise<void> {
    if (this.stopState) return;
    this.logger.info('Hang up: Master');
    let next: Settings;
    try {
      next = await resolveSettings(this.sources);
    } catch (error) {
      this.logger.error(`Reload failed, keeping the current configuration: ${(error as Error).message}`);
      return;
    }
    if (this.stopState) return;
    try {
      const logger = new Logger(next);
      this.logger.close();
      this.logger = logger;
    } catch (error) {
      this.logger.error(`Reload: ${(error as Error).message}; keeping the current logs`);
    }
    this.applyEnv(this.settings.env, next.env);
    await this.rebind(next);
    if (next.pidfile !== this.settings.pidfile) {
      this.pidfile?.unlink();
      this.pidfile = next.pidfile ? new Pidfile(next.pidfile) : undefined;
      this.pidfile?.create();
    }
    this.settings = next;
    this.target = next.workers;
    this.generation++;
    this.manageWorkers();
  }

  /** Keeps the listeners whose bind is unchanged, opens the new ones and closes the dropped ones. */
  private async rebind(next: Settings): Promise<void> {
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((bind, i) => bind === b[i]);
    if (same(this.settings.bind, next.bind)) return;
    const keep = this.listeners.filter((listener) => next.bind.includes(listener.bind));
    const added = next.bind.filter((bind) => !keep.some((listener) => listener.bind === bind));
    let opened: Listener[];
    try {
      opened = await createListeners(added, { runtime: this.runtime, backlog: next.backlog, logger: this.logger, attempts: 1 });
    } catch (error) {
      this.logger.error(`Reload: ${(error as Error).message}; keeping the current sockets`);
      next.bind = this.settings.bind;
      return;
    }
    for (const listener of this.listeners) if (!keep.includes(listener)) listener.close();
    for (const listener of opened) this.logger.info(`Listening at: ${listener.url} (${process.pid})`);
    this.listeners = next.bind.map((bind) => [...keep, ...opened].find((listener) => listener.bind === bind)!);
  }
}
