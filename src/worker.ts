/**
 * A worker process (Gunicorn's workers/base.py as a class): boots (logger, signals, app), serves the app with
 * the engines its runtime offers for its sockets, sends heartbeats with its counters to the master, obeys the
 * master's messages, and retires gracefully (stop, max-requests, an uncaught error, the master gone).
 */
import { AppLoadError, loadApp } from './app.ts';
import { EventLoopLag } from './event-loop-lag.ts';
import { Logger, takeLoggedCounts } from './glogging.ts';
import { awaitHook, callHook, type HookSettings, loadWorkerHooks, type ParentArbiter, type WorkerView, withRequestHooks } from './hooks.ts';
import type { FetchHandler } from './http/types.ts';
import { EXIT, type HeartbeatMessage, type MasterMessage, WORKER_ENV, type WorkerBoot, type WorkerMessage, type WorkerSocket } from './messages.ts';
import { describeIdentity } from './privileges.ts';
import { processTitle } from './proctitle.ts';
import { countsRequests, RequestStats } from './request-stats.ts';
import { currentRuntime, type EngineName, type Runtime } from './runtime/index.ts';
import { durationsOf, type Settings } from './settings.ts';
import { type RequestHooks, RequestCounters, type ServingEngine } from './workers/base.ts';
import { ENGINES } from './workers/index.ts';
import { websocketHandlerOf } from './websocket/app-handler.ts';

/** The engine that serves each of a worker's sockets, grouped by engine. */
function socketsByEngine(runtime: Runtime, sockets: WorkerSocket[]): Map<EngineName, WorkerSocket[]> {
  const groups = new Map<EngineName, WorkerSocket[]>();
  for (const socket of sockets) {
    const { reusePort, inherit } = runtime.engines;
    const name = socket.kind === 'fd' ? inherit : typeof reusePort === 'string' ? reusePort : undefined;
    if (!name) throw new Error(`${runtime.name} cannot serve reuse-port sockets`);
    groups.set(name, [...(groups.get(name) ?? []), socket]);
  }
  return groups;
}

/** One worker process, from boot to exit. */
export class Worker {
  private readonly boot: WorkerBoot;
  private readonly settings: Settings;
  private readonly appHandler?: FetchHandler;
  /** Settings given in code (serve()'s options): their hooks win over the config file's. */
  private readonly codeSettings?: Record<string, unknown>;
  /** The worker hooks set (src/hooks.ts), and what they are given. */
  private hooks: Partial<HookSettings> = {};
  private hookView!: WorkerView;
  private parentView!: ParentArbiter;
  /** workerInt has run (a quick stop may come both as a signal and as the master's message). */
  private interrupted = false;
  private readonly counters = new RequestCounters();
  /** Request statistics for the master's metrics, with --metrics-bind or --statsd-host only. */
  private readonly stats?: RequestStats;
  private readonly engines: ServingEngine[] = [];
  private readonly lag = new EventLoopLag();
  private logger!: Logger;
  private runtime!: Runtime;
  private retiring = false;
  /** Asked the master for a replacement and serves on until stopped (reuse-port max-requests). */
  private replacing = false;

  /** `handler` serves instead of loading `settings.app` (serve() from code). */
  constructor(boot: WorkerBoot, handler?: FetchHandler, codeSettings?: Record<string, unknown>) {
    this.boot = boot;
    this.settings = boot.settings;
    this.appHandler = handler;
    if (countsRequests(this.settings)) this.stats = new RequestStats();
    this.codeSettings = codeSettings;
  }

  /** Boots and serves; returns once the worker is serving (it exits by itself later). */
  async run(): Promise<void> {
    await this.init();
    await this.loadHooks();
    const handler = await this.loadHandler();
    await awaitHook(this.logger, 'postWorkerInit', this.hooks.postWorkerInit, this.hookView);
    await this.serve(withRequestHooks(handler, this.hooks, this.hookView));
  }

  /** Process set-up before the app loads: environment, title, logger, signals, heartbeat. */
  private async init(): Promise<void> {
    delete process.env[WORKER_ENV];
    process.env.TSGUNICORN_WORKER_ID = String(this.boot.id);
    this.runtime = await currentRuntime();
    // Before the rights go: a process that changed its uid may no longer write its own /proc files (Bun's title).
    this.runtime.setProcessTitle(processTitle('worker', this.settings.procName, this.settings.app));
    this.dropPrivileges();
    try {
      this.logger = new Logger(this.settings);
    } catch (error) {
      process.stderr.write(`tsgunicorn worker: ${(error as Error).message}\n`);
      process.exit(EXIT.WORKER_BOOT_ERROR);
    }
    this.logger.info(`Booting worker with pid: ${process.pid}`);
    this.installSignals();
    setInterval(() => this.heartbeat(), durationsOf(this.settings).heartbeatMs);
    this.lag.start();
  }

  /** Becomes --user/--group (Gunicorn's init_process does it first): the app never runs with the master's rights. */
  private dropPrivileges(): void {
    if (!this.boot.identity) return;
    try {
      this.runtime.dropPrivileges(this.boot.identity);
    } catch (error) {
      process.stderr.write(`tsgunicorn worker: cannot run as ${describeIdentity(this.boot.identity)}: ${(error as Error).message}\n`);
      process.exit(EXIT.WORKER_BOOT_ERROR);
    }
  }

  /** Reads the worker hooks the master found set (src/hooks.ts) and runs postFork. */
  private async loadHooks(): Promise<void> {
    const { counters, logger, settings } = this;
    this.hookView = {
      pid: process.pid, slot: this.boot.id, ppid: process.ppid, settings, log: logger,
      get requests() {
        return counters.finished;
      },
    };
    this.parentView = { pid: process.ppid, settings };
    if (!this.boot.hooks?.length) return;
    try {
      this.hooks = await loadWorkerHooks(settings.config, this.boot.hooks, this.codeSettings);
    } catch (error) {
      this.logger.exception('Cannot load the server hooks', error);
      this.exit(EXIT.WORKER_BOOT_ERROR);
    }
    await awaitHook(logger, 'postFork', this.hooks.postFork, this.parentView, this.hookView);
  }

  /** INT or QUIT, as a signal or the master's quick stop: workerInt, once. */
  private interrupt(): void {
    if (this.interrupted) return;
    this.interrupted = true;
    callHook(this.logger, 'workerInt', this.hooks.workerInt, this.hookView);
  }

  private async loadHandler(): Promise<FetchHandler> {
    if (this.appHandler) return this.appHandler;
    try {
      return await loadApp(this.settings.app!);
    } catch (error) {
      this.logger.exception('Exception in worker process', error);
      return this.exit(error instanceof AppLoadError ? EXIT.APP_LOAD_ERROR : EXIT.WORKER_BOOT_ERROR);
    }
  }

  /** Starts an engine per kind of socket, then tells the master this worker is ready. */
  private async serve(handler: FetchHandler): Promise<void> {
    const context = {
      handler, settings: this.settings, logger: this.logger, runtime: this.runtime, hooks: this.requestHooks(),
      websocket: websocketHandlerOf(handler),
    };
    try {
      for (const [name, sockets] of socketsByEngine(this.runtime, this.boot.sockets)) {
        const engine = (await ENGINES[name].load())(context);
        this.engines.push(engine);
        await engine.listen(sockets);
      }
    } catch (error) {
      this.logger.exception('Worker could not listen on its sockets', error);
      return this.exit(EXIT.WORKER_BOOT_ERROR);
    }
    this.send({ type: 'ready' });
  }

  /** The engines' view of this worker: request accounting and the max-requests limit live here only. */
  private requestHooks(): RequestHooks {
    const { maxRequests } = this.boot;
    const keepAliveOff = this.settings.keepAlive === 0;
    const lastRequest = () => maxRequests > 0 && this.counters.started >= maxRequests;
    return {
      timed: this.logger.accessEnabled || this.stats !== undefined,
      onRequestStart: () => {
        this.counters.started++;
      },
      // The response that reaches max-requests already closes its connection, as Gunicorn's does.
      shouldCloseConnection: () => this.retiring || keepAliveOff || lastRequest(),
      onRequestDone: (entry, method, status, startedAt) => {
        this.counters.finished++;
        this.stats?.record(method, status, performance.now() - startedAt);
        if (entry) this.logger.access(entry);
        if (lastRequest() && !this.retiring && !this.replacing) this.recycle();
      },
      activity: () => this.counters.started + this.counters.finished,
    };
  }

  /**
   * Max-requests reached. On inherited sockets the worker retires at once (the master's socket queues what comes
   * meanwhile); sockets it opened itself stay open until the master has a replacement ready.
   */
  private recycle(): void {
    this.logger.info('Autorestarting worker after current request.');
    if (this.boot.sockets.some((socket) => socket.kind === 'reuse-port')) {
      this.replacing = true;
      this.send({ type: 'recycle' });
    } else {
      this.retire();
    }
  }

  /**
   * Stops accepting, lets in-flight requests finish (up to the graceful timeout), then exits; `crashed`: because
   * of an uncaught error.
   */
  retire(crashed = false): void {
    if (this.retiring) return;
    this.retiring = true;
    this.send({ type: 'retiring', crashed });
    for (const engine of this.engines) engine.stopAccepting();
    setTimeout(() => this.exit(EXIT.OK), durationsOf(this.settings).gracefulMs).unref();
    void Promise.all(this.engines.map((engine) => engine.drain())).then(() => this.exit(EXIT.OK));
  }

  private heartbeat(): void {
    const { finished, inFlight } = this.counters;
    this.send({ type: 'heartbeat', requests: finished, active: inFlight, rss: process.memoryUsage().rss, lagMs: this.lag.takeWorst(), ...this.statsSinceLastHeartbeat() });
  }

  /** The request statistics and log lines counted since the last heartbeat, with the metrics on only. */
  private statsSinceLastHeartbeat(): Pick<HeartbeatMessage, 'stats' | 'logged'> | undefined {
    return this.stats && { stats: this.stats.takeDelta(), logged: takeLoggedCounts() };
  }

  private onMasterMessage(message: MasterMessage): void {
    if (message.type === 'stop') {
      if (message.graceful) this.retire();
      else {
        this.interrupt();
        this.exit(EXIT.OK);
      }
    } else if (message.type === 'reopen-logs') {
      this.logger.reopenFiles();
    } else if (message.type === 'abort') {
      this.logger.error(`Worker aborted by the master (pid: ${process.pid})`);
      callHook(this.logger, 'workerAbort', this.hooks.workerAbort, this.hookView);
      this.exit(1);
    }
  }

  private installSignals(): void {
    process.on('message', (message: MasterMessage) => this.onMasterMessage(message));
    const onMasterGone = () => {
      this.logger.info('Master is gone, shutting down');
      this.retire();
    };
    process.on('disconnect', onMasterGone);
    // A master that died while this worker started closed the channel before there was a listener to hear it.
    if (!process.connected) onMasterGone();
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) process.on(signal, () => this.onStopSignal(signal));
    process.on('SIGUSR1', () => this.logger.reopenFiles());
    process.on('SIGHUP', () => this.logger.debug('Ignoring SIGHUP in a worker; send HUP to the master'));
    process.on('unhandledRejection', (reason) => this.logger.exception('Unhandled promise rejection in the app', reason));
    process.on('uncaughtException', (error) => {
      this.logger.exception('Uncaught exception in the worker; retiring it', error);
      this.retire(true);
    });
  }

  /**
   * TERM (graceful) or INT/QUIT (quick): the master decides, since the signal may have reached the whole process
   * group and the master may keep serving for its --pre-stop-delay first; without a master the worker obeys.
   */
  private onStopSignal(signal: 'SIGTERM' | 'SIGINT' | 'SIGQUIT'): void {
    if (signal !== 'SIGTERM') this.interrupt();
    if (process.connected) this.send({ type: 'signal', signal });
    else if (signal === 'SIGTERM') this.retire();
    else this.exit(EXIT.OK);
  }

  private send(message: WorkerMessage): void {
    if (process.connected) process.send!(message);
  }

  private exit(code: number): never {
    this.logger.info(`Worker exiting (pid: ${process.pid})`);
    // What was counted since the last heartbeat (IPC writes go out at once when the pipe has room).
    if (this.stats) this.heartbeat();
    if (this.hookView) callHook(this.logger, 'workerExit', this.hooks.workerExit, this.parentView, this.hookView);
    this.logger.close();
    process.exit(code);
  }
}

/**
 * Runs this process as a worker until it is told to stop; `handler` overrides loading `settings.app`, and
 * `codeSettings` (serve()'s options) may hold hooks.
 */
export function runWorker(boot: WorkerBoot, handler?: FetchHandler, codeSettings?: Record<string, unknown>): Promise<void> {
  return new Worker(boot, handler, codeSettings).run();
}
