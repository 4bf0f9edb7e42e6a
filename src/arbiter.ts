/**
 * The arbiter (master): holds the listening sockets, keeps the configured number of workers alive, kills the
 * ones whose heartbeat stops, and handles Gunicorn's signals (TERM, INT/QUIT, HUP, TTIN/TTOU, USR1, USR2, WINCH).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { parseAppSpec } from './app.ts';
import { parseBind } from './address.ts';
import { formatByteSize } from './byte-size.ts';
import { type ConfigSources, resolveSettings } from './config.ts';
import { allowedCpus } from './cpu-count.ts';
import { CrashBackoff } from './crash-backoff.ts';
import type { ControlledMaster, MasterStats } from './control-commands.ts';
import { ControlServer } from './control-server.ts';
import { controlSocketPath } from './control-socket-path.ts';
import { ConfigError } from './errors.ts';
import { Logger } from './glogging.ts';
import { MasterLoop } from './master-loop.ts';
import { type ArbiterView, awaitHook, callHook, workerHooksSet, workerInfo } from './hooks.ts';
import { EXIT, WORKER_ENV, type WorkerBoot, type WorkerMessage, type WorkerSocket } from './messages.ts';
import { ServerMetrics } from './metrics.ts';
import { MetricsServer } from './metrics-server.ts';
import { Pidfile } from './pidfile.ts';
import { describeIdentity, handOver, privilegedPorts, withUmask, workerIdentity } from './privileges.ts';
import { processTitle } from './proctitle.ts';
import { renderPrometheus } from './prometheus.ts';
import { SourceWatcher } from './reloader.ts';
import type { EngineName, ProcessIdentity, Runtime } from './runtime/index.ts';
import { durationsOf, type Settings } from './settings.ts';
import {
  activatedListener, createListeners, kernelMigratesQueuedConnections, type Listener, RESETS_ON_RESTART_WARNING,
} from './sock.ts';
import { sameStatsd, StatsdReporter } from './statsd.ts';
import { type ActivatedSocket, SystemdNotifier, takeActivatedSockets, takeNotifySocket } from './systemd.ts';
import { SystemdWatchdog, takeWatchdogInterval } from './systemd-watchdog.ts';
import { checkTlsSettings, tlsRefusal } from './tls-options.ts';
import { spawnNewMaster, takeUpgradeHandoff, type UpgradeHandoff } from './upgrade.ts';
import { VERSION } from './version.ts';
import { WorkerHandle } from './worker-handle.ts';
import { ENGINES } from './workers/index.ts';
import { protocolsProblem } from './workers/protocols.ts';

interface StopState {
  graceful: boolean;
  deadline: number;
  killed: boolean;
}

/** How long a worker told to abort (timeout) or to stop quickly gets before SIGKILL. */
const ABORT_GRACE_MS = 1000;
const QUICK_STOP_MS = 2000;
/**
 * How long the master waits, after a worker reports a stop signal, to see whether the signal reached the master
 * too (sent to the process group): one kill() delivers it to all of them at once, but each runtime runs its
 * handlers on its own schedule, so the worker's message may come first.
 */
const GROUP_SIGNAL_SETTLE_MS = 200;

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

/** The master process. */
export class Arbiter implements ControlledMaster {
  settings: Settings;
  readonly sources: ConfigSources;
  readonly runtime: Runtime;
  logger: Logger;
  listeners: Listener[] = [];
  readonly workers = new Map<number, WorkerHandle>();
  /** How many workers should run, 0 until resolved (see `target`). */
  private workerTarget = 0;
  /** The target has been set once (nworkersChanged gets null as the previous count the first time). */
  private targetSet = false;
  /** Who the workers run as (--user, --group); undefined: as the master. */
  private identity?: ProcessIdentity;
  private generation = 0;
  /** The last generation number handed out (a failed rollout goes back to an older `generation`). */
  private newestGeneration = 0;
  /** What workers are spawned with: the settings of `generation`. */
  private workerSettings: Settings;
  /** While a HUP rolls out: the generation and settings to go back to if a new worker fails to boot. */
  private rollback?: { generation: number; settings: Settings };
  /** A worker has been ready once: from then on an app that fails to load no longer stops the master. */
  private booted = false;
  private readonly crashBackoff = new CrashBackoff();
  /** Set during --pre-stop-delay after TERM: fires the graceful stop. */
  private preStop?: ReturnType<typeof setTimeout>;
  private age = 0;
  private stopState?: StopState;
  private pidfile?: Pidfile;
  private exitCode: number = EXIT.OK;
  private haltReason?: string;
  private finish?: (code: number) => void;
  private readonly loop = new MasterLoop(() => this.onTick(), () => this.nextDeadline());
  private readonly signalHandlers = new Map<string, () => void>();
  /** The new master a USR2 started, while it runs. */
  private newMaster?: ChildProcess;
  /** The old master's pid while this master, started by its USR2, waits for it to exit. */
  private oldMasterPid?: number;
  /** The listeners came from systemd (socket activation): a HUP keeps them whatever --bind says. */
  private socketActivated = false;
  private notifier!: SystemdNotifier;
  private watchdog!: SystemdWatchdog;
  /** What the workers becoming ready completes, for sd_notify: the boot, a reload (HUP), or nothing. */
  private awaitingReady?: 'boot' | 'reload' = 'boot';
  /** The control socket (`tsgunicorn ctl`), once open. */
  private control?: ControlServer;
  private readonly startedAt = performance.now();
  /** The sums of the workers' request statistics and the restarts, for --metrics-bind and --statsd-host. */
  private readonly metrics = new ServerMetrics();
  private metricsServer?: MetricsServer;
  private statsd?: StatsdReporter;
  /** --reload: watches the app's source files. */
  private sourceWatcher?: SourceWatcher;
  /** --reload: a worker could not load the app; none is spawned until a source file changes (or a HUP). */
  private waitingForChange = false;
  /** What the server hooks get (src/hooks.ts), made on first use. */
  private view?: ArbiterView;

  constructor(settings: Settings, sources: ConfigSources, runtime: Runtime, logger: Logger) {
    this.settings = settings;
    this.sources = sources;
    this.runtime = runtime;
    this.logger = logger;
    this.workerSettings = settings;
  }

  /** How many workers should run (workers, `auto` resolved, changed by TTIN/TTOU); a change runs nworkersChanged. */
  get target(): number {
    return this.workerTarget;
  }

  set target(count: number) {
    const previous = this.targetSet ? this.workerTarget : null;
    this.workerTarget = count;
    this.targetSet = true;
    if (count !== previous) callHook(this.logger, 'nworkersChanged', this.settings.nworkersChanged, this.hookView, count, previous);
  }

  /** The master as the server hooks see it (src/hooks.ts). */
  private get hookView(): ArbiterView {
    const arbiter = this;
    this.view ??= {
      pid: process.pid,
      get settings() {
        return arbiter.settings;
      },
      get workers() {
        return [...arbiter.workers.values()].map(workerInfo);
      },
      get numWorkers() {
        return arbiter.target;
      },
      get log() {
        return arbiter.logger;
      },
      reload: () => void arbiter.reload(),
      stop: (graceful = true) => arbiter.stop(graceful),
    };
    return this.view;
  }

  /** Binds, spawns the workers and supervises them; resolves with the exit status once the master stops. */
  async run(): Promise<number> {
    const { settings, logger } = this;
    this.applyEnv([], settings.env);
    this.identity = workerIdentity(settings);
    const activated = takeActivatedSockets(process.env);
    this.notifier = new SystemdNotifier(takeNotifySocket(process.env), this.runtime, () => this.logger);
    this.watchdog = new SystemdWatchdog(takeWatchdogInterval(process.env), this.notifier);
    const handoff = takeUpgradeHandoff(process.env, this.runtime);
    this.oldMasterPid = handoff?.oldMasterPid;
    this.checkTls(settings, this.identity, () => !activated && !handoff?.socketActivated && this.reusePort(settings));
    if (settings.pidfile) {
      // A new master started by USR2 writes <pidfile>.2 until it is promoted, as Gunicorn's does.
      this.pidfile = new Pidfile(handoff ? `${settings.pidfile}.2` : settings.pidfile);
      this.pidfile.create();
    }
    this.runtime.setProcessTitle(processTitle('master', settings.procName, settings.app));
    logger.info(`Starting tsgunicorn ${VERSION} (${this.runtime.name} ${this.runtime.version})`);
    await awaitHook(logger, 'onStarting', settings.onStarting, this.hookView);
    if (handoff) logger.info(`Binary upgrade: the old master (pid:${handoff.oldMasterPid}) serves beside this one until it exits`);
    try {
      await this.startMetricsServer(handoff !== undefined);
      this.listeners = activated
        ? this.activatedListeners(activated)
        : await withUmask(settings.umask, () => this.openListeners(handoff));
    } catch (error) {
      this.metricsServer?.close();
      this.pidfile?.unlink();
      throw error;
    }
    for (const listener of this.listeners) logger.info(`Listening at: ${listener.url} (${process.pid})`);
    logger.info(`Using worker: ${this.engineDescription()}`);
    this.handOverFiles();
    if (this.identity) logger.info(`Workers run as ${describeIdentity(this.identity)}`);
    this.target = this.workerCount(settings);
    this.explainMode(this.listeners.some((listener) => listener.reusePort));
    await awaitHook(logger, 'whenReady', settings.whenReady, this.hookView);
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    this.installSignals();
    this.manageWorkers();
    this.reloadStatsd(settings);
    this.loop.start();
    void this.openControlSocket();
    if (settings.reload) void this.watchSources();
    return done;
  }

  /** systemd's sockets, used instead of binding (--bind is ignored), never unlinked. */
  private activatedListeners(sockets: ActivatedSocket[]): Listener[] {
    this.socketActivated = true;
    this.logger.info(`Using ${sockets.length} socket(s) from systemd instead of binding ${this.settings.bind.join(', ')}`);
    return sockets.map(({ fd, name }) => {
      if (name) this.logger.debug(`systemd socket fd ${fd} is named ${name}`);
      return activatedListener(this.runtime, fd, this.settings.certfile !== null);
    });
  }

  /**
   * Opens a listener for every bind, taking the old master's socket for each bind it already served (USR2) and
   * closing the ones this configuration dropped; systemd's sockets handed over by the old master are all kept.
   */
  private async openListeners(handoff?: UpgradeHandoff): Promise<Listener[]> {
    if (handoff?.socketActivated) {
      this.socketActivated = true;
      this.logger.info(`Using the ${handoff.listeners.length} socket(s) from systemd the old master handed over`);
      return handoff.listeners;
    }
    const { bind } = this.settings;
    const inherited = handoff?.listeners ?? [];
    for (const listener of inherited) if (!bind.includes(listener.bind)) listener.close();
    const kept = inherited.filter((listener) => bind.includes(listener.bind));
    const opened = await createListeners(bind.filter((text) => !kept.some((listener) => listener.bind === text)), this.listenOptions(this.settings));
    return bind.map((text) => [...kept, ...opened].find((listener) => listener.bind === text)!);
  }

  /**
   * Whether TCP binds run in reuse-port mode: as set, or by default where the runtime's engine drains without
   * losing requests and the kernel hands a closing socket's queued connections to another worker. A ConfigError
   * when asked for where the runtime cannot.
   */
  private reusePort(settings: Settings): boolean {
    const { engines } = this.runtime;
    const wanted = settings.reusePort ??
      (engines.reusePortByDefault && !this.proxyHeadersUnread(settings) && !this.workersCannotBind(settings) &&
        kernelMigratesQueuedConnections());
    if (wanted && typeof engines.reusePort !== 'string') throw new ConfigError(`--reuse-port: ${engines.reusePort.unsupported}`);
    if (wanted && this.proxyHeadersUnread(settings)) {
      throw new ConfigError(`--proxy-protocol ${settings.proxyProtocol}: ${ENGINES[engines.reusePort as EngineName].description} ` +
        '(reuse-port mode) parses the connection\'s bytes itself and cannot read PROXY headers; use --no-reuse-port');
    }
    if (wanted && this.workersCannotBind(settings)) {
      throw new ConfigError(`--reuse-port: workers running as --user/--group cannot bind port ` +
        `${privilegedPorts(settings.bind).join(', ')} themselves (below net.ipv4.ip_unprivileged_port_start); ` +
        'use --no-reuse-port, whose master binds them');
    }
    const unservable = protocolsProblem(settings, this.runtime, wanted);
    if (unservable) throw new ConfigError(unservable);
    return wanted;
  }

  /** Whether the workers drop privileges and a TCP port is one only root can bind (reuse-port workers bind it). */
  private workersCannotBind(settings: Settings): boolean {
    return (settings.user !== null || settings.group !== null) && privilegedPorts(settings.bind).length > 0;
  }

  /**
   * Whether --proxy-protocol is on and this runtime's reuse-port engine cannot read PROXY headers (the native
   * servers parse a connection's bytes themselves): then inherit mode is the default, and reuse-port an error.
   */
  private proxyHeadersUnread(settings: Settings): boolean {
    const { reusePort } = this.runtime.engines;
    return settings.proxyProtocol !== 'off' && typeof reusePort === 'string' && !ENGINES[reusePort].readsProxyHeaders;
  }

  /**
   * Checks the TLS settings before workers are spawned with them: the files (src/tls-options.ts; readable by the
   * workers' `identity` too), and that the engines serving in the mode `reusePort()` tells can do what they ask. A
   * ConfigError naming what is wrong.
   */
  private checkTls(settings: Settings, identity: ProcessIdentity | undefined, reusePort: () => boolean): void {
    checkTlsSettings(settings, identity);
    if (settings.certfile === null) return;
    const { inherit, reusePort: reusePortEngine } = this.runtime.engines;
    const binds = settings.bind.map(parseBind);
    const engines = reusePort() && typeof reusePortEngine === 'string'
      ? [...(binds.some((bind) => bind.kind === 'tcp') ? [reusePortEngine] : []), ...(binds.some((bind) => bind.kind !== 'tcp') ? [inherit] : [])]
      : [inherit];
    for (const engine of engines) {
      const refusal = tlsRefusal(settings, `${engine} (${ENGINES[engine].description}, ${this.runtime.name} ${this.runtime.version})`,
        ENGINES[engine].tlsLimits(this.runtime));
      if (refusal) throw new ConfigError(refusal);
    }
  }

  /** Says once at start what reuse-port mode costs or would bring here. */
  private explainMode(reusePort: boolean): void {
    const tcp = this.listeners.some((listener) => listener.url.startsWith('http'));
    if (!tcp || kernelMigratesQueuedConnections()) return;
    if (reusePort) this.logger.warning(RESETS_ON_RESTART_WARNING);
    else if (this.settings.reusePort === null && this.runtime.engines.reusePortByDefault) {
      this.logger.info('Reuse-port mode (the runtime\'s native server in every worker) is off by default because ' +
        'net.ipv4.tcp_migrate_req is 0; --reuse-port turns it on (README, "Runtimes and engines")');
    }
  }

  private listenOptions(settings: Settings) {
    return {
      runtime: this.runtime, backlog: settings.backlog, logger: this.logger, reusePort: this.reusePort(settings), secure: settings.certfile !== null,
    };
  }

  /** The engines serving the current listeners, for the `Using worker:` line. */
  private engineDescription(): string {
    const { inherit, reusePort } = this.runtime.engines;
    const parts = new Set(this.listeners.map((listener) => (listener.reusePort && typeof reusePort === 'string'
      ? `${reusePort} (${ENGINES[reusePort].description} on SO_REUSEPORT sockets)`
      : `${inherit} (${ENGINES[inherit].description} on inherited sockets)`)));
    return `${[...parts].join(' and ')}, ${this.runtime.name} ${this.runtime.version}`;
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
        this.shutdown(true);
        break;
      case 'SIGINT':
      case 'SIGQUIT':
        this.shutdown(false);
        break;
      case 'SIGHUP':
        void this.reload();
        break;
      case 'SIGTTIN':
        this.addWorkers(1);
        break;
      case 'SIGTTOU':
        this.removeWorkers(1);
        break;
      case 'SIGUSR1':
        this.reopenLogs();
        break;
      case 'SIGUSR2':
        this.reexec();
        break;
      case 'SIGWINCH':
        this.handleWinch();
        break;
    }
  }

  /** The sockets a worker serves: inherited fds (passed at spawn) and reuse-port addresses, in bind order. */
  private workerSockets(): { sockets: WorkerSocket[]; stdio: number[] } {
    const inherited = this.listeners.filter((listener) => !listener.reusePort);
    const passing = this.runtime.passListeners(inherited.map((listener) => listener.fd));
    const sockets = this.listeners.map((listener): WorkerSocket => (listener.reusePort
      ? { kind: 'reuse-port', address: listener.reusePort }
      : { kind: 'fd', fd: passing.workerFds[inherited.indexOf(listener)] }));
    return { sockets, stdio: passing.stdio };
  }

  private spawnWorker(id: number): void {
    const settings = this.workerSettings;
    const jitter = Math.floor(Math.random() * (settings.maxRequestsJitter + 1));
    const { sockets, stdio } = this.workerSockets();
    const boot: WorkerBoot = {
      id,
      settings,
      sockets,
      maxRequests: settings.maxRequests > 0 ? settings.maxRequests + jitter : 0,
      identity: this.identity,
      hooks: workerHooksSet(settings),
    };
    callHook(this.logger, 'preFork', this.settings.preFork, this.hookView, { slot: id, age: this.age + 1 });
    const { command, args } = this.runtime.workerCommand();
    const child = spawn(command, args, {
      stdio: ['ignore', 'inherit', 'inherit', ...stdio, 'ipc'],
      env: { ...process.env, ...this.runtime.workerEnv?.(settings), [WORKER_ENV]: JSON.stringify(boot) },
    });
    if (child.pid === undefined) {
      child.on('error', (error) => this.logger.error(`Cannot start a worker (${command}): ${error.message}`));
      this.halt('Worker failed to boot.', EXIT.WORKER_BOOT_ERROR);
      return;
    }
    const worker = new WorkerHandle(child, id, ++this.age, this.generation, durationsOf(settings).bootTimeoutMs);
    this.workers.set(worker.pid, worker);
    this.loop.wake();
    this.logger.debug(`Spawned worker (pid:${worker.pid})`);
    child.on('message', (message: WorkerMessage) => this.onWorkerMessage(worker, message));
    child.on('exit', (code, signal) => this.onWorkerExit(worker, code, signal));
    child.on('error', (error) => this.logger.error(`Worker (pid:${worker.pid}): ${error.message}`));
  }

  private onWorkerMessage(worker: WorkerHandle, message: WorkerMessage): void {
    worker.seen();
    if (message.type === 'ready') {
      worker.markReady();
      this.booted = true;
      this.logger.debug(`Worker (pid:${worker.pid}) is ready`);
      this.manageWorkers();
      this.notifyIfReady();
    } else if (message.type === 'heartbeat') {
      const { type: _, ...status } = message;
      worker.ping(status);
      this.metrics.addHeartbeat(message);
      this.recycleIfOverMemory(worker);
    } else if (message.type === 'signal') {
      setTimeout(() => this.onWorkerSignal(worker, message.signal), GROUP_SIGNAL_SETTLE_MS);
    } else if (message.type === 'recycle') {
      worker.markReplacing();
      this.metrics.restarted('max-requests');
      this.manageWorkers();
    } else if (message.type === 'retiring' && (worker.live || worker.state === 'replacing')) {
      // Retiring by itself and not crashed: it reached --max-requests (inherited sockets).
      if (!message.crashed && worker.live) this.metrics.restarted('max-requests');
      worker.retire(durationsOf(this.settings).gracefulMs + ABORT_GRACE_MS);
      if (message.crashed) this.onWorkerLost(worker, 'crashed (uncaught exception)');
      this.manageWorkers();
    }
  }

  private onWorkerExit(worker: WorkerHandle, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(worker.pid);
    const { logger } = this;
    callHook(logger, 'childExit', this.settings.childExit, this.hookView, { ...workerInfo(worker), exitCode: code, signal });
    logger.debug(`Worker (pid:${worker.pid}) exited; it had served ${worker.lastStatus.requests} requests at its last heartbeat`);
    if (signal === 'SIGKILL') logger.error(`Worker (pid:${worker.pid}) was sent SIGKILL! Perhaps out of memory?`);
    else if (signal === 'SIGTERM') logger.info(`Worker (pid:${worker.pid}) was sent SIGTERM!`);
    else if (signal) logger.warning(`Worker (pid:${worker.pid}) was sent ${signal}!`);
    else if (code !== 0) logger.error(`Worker (pid:${worker.pid}) exited with code ${code}.`);
    const firstBoot = !this.booted && !this.stopState && !this.settings.reload;
    if (firstBoot && code === EXIT.APP_LOAD_ERROR) this.halt('App failed to load.', EXIT.APP_LOAD_ERROR);
    else if (firstBoot && code === EXIT.WORKER_BOOT_ERROR) this.halt('Worker failed to boot.', EXIT.WORKER_BOOT_ERROR);
    else if (this.failedToBootUnderReload(worker, code)) this.waitForChange(worker);
    else if (!this.stopState && !worker.retired) this.onWorkerLost(worker, signal ? `was killed by ${signal}` : `exited with code ${code}`);
    if (this.stopState) {
      if (this.workers.size === 0) this.finishStop();
    } else {
      this.manageWorkers();
    }
  }

  /**
   * Spawns missing workers, retires surplus ones (oldest first), and replaces the outgoing workers (an older
   * generation, or asking for a replacement) one by one: while there are some, at most --reload-batch new workers
   * boot at once, and an outgoing worker is retired only once a new one is ready in its place, so that the ready
   * workers never fall below the target. During a crash-loop backoff nothing is spawned.
   */
  private manageWorkers(): void {
    if (this.stopState) return;
    const all = [...this.workers.values()];
    const current = all.filter((w) => w.generation === this.generation && w.live);
    const outgoing = all.filter((w) => w.state === 'replacing' || (w.generation !== this.generation && w.live));
    const surplus = current.sort((a, b) => a.age - b.age).slice(0, Math.max(0, current.length - this.target));
    for (const worker of surplus) this.stopWorker(worker, true);
    const staying = current.filter((w) => !surplus.includes(w));
    for (const worker of outgoing.filter((w) => w.state === 'booting')) this.stopWorker(worker, false);
    const serving = outgoing.filter((w) => w.state !== 'booting').sort((a, b) => replaceOrder(a) - replaceOrder(b));
    const readyCurrent = staying.filter((w) => w.state === 'ready').length;
    for (const worker of serving.slice(0, Math.max(0, readyCurrent + serving.length - this.target))) {
      if (worker.state !== 'replacing') this.metrics.restarted('reload');
      this.stopWorker(worker, true);
    }
    if (this.crashBackoff.waiting(performance.now()) || this.waitingForChange) return;
    const booting = staying.length - readyCurrent;
    const room = serving.length > 0 ? this.workerSettings.reloadBatch - booting : Infinity;
    const usedSlots = new Set(staying.map((w) => w.slot));
    for (let count = staying.length; count < this.target && count - staying.length < room; count++) {
      let slot = 0;
      while (usedSlots.has(slot)) slot++;
      usedSlots.add(slot);
      this.spawnWorker(slot);
      if (this.stopState) return;
    }
    if (this.rollback && serving.length === 0 && booting === 0 && staying.length >= this.target) {
      this.rollback = undefined;
      this.logger.info(`Reload done: ${staying.length} workers of the new configuration serve`);
    }
  }

  private stopWorker(worker: WorkerHandle, graceful: boolean): void {
    this.logger.debug(`Stopping worker (pid:${worker.pid})${graceful ? ' gracefully' : ''}`);
    worker.retire(graceful ? durationsOf(this.settings).gracefulMs + ABORT_GRACE_MS : QUICK_STOP_MS);
    worker.send({ type: 'stop', graceful });
  }

  /**
   * A worker died (`how`) that nobody stopped. A new worker of a HUP that never became ready stops the rollout:
   * the previous configuration's workers keep serving (and replace the new ones already ready). Any other worker
   * is respawned, after a crash-loop delay when it died within --min-uptime of its start.
   */
  private onWorkerLost(worker: WorkerHandle, how: string): void {
    // The timeouts were counted where the master acted.
    if (worker.abortedAt === undefined && !worker.bootTimedOut) this.metrics.restarted('crash');
    const now = performance.now();
    if (this.rollback && worker.readyAt === undefined && worker.generation === this.generation) {
      const why = worker.bootTimedOut ? `was not ready within --boot-timeout ${this.workerSettings.bootTimeout} s` : `${how} before it was ready`;
      this.abandonRollout(`new worker (pid:${worker.pid}) ${why}`);
      return;
    }
    const uptimeMs = now - worker.startedAt;
    const delayMs = this.crashBackoff.onExit(worker.age, uptimeMs, durationsOf(this.workerSettings).minUptimeMs, now);
    if (delayMs > 0) {
      this.logger.warning(`Worker (pid:${worker.pid}) ${how} ${(uptimeMs / 1000).toFixed(1)} s after it started ` +
        `(--min-uptime ${this.workerSettings.minUptime} s): respawning in ${delayMs / 1000} s`);
    }
  }

  /**
   * --reload watches the app's source files (src/reloader.ts): a change reloads as HUP does. Whether it is on,
   * and which extra files, are read at start only.
   */
  private async watchSources(): Promise<void> {
    const { app, config, reloadExtraFiles } = this.settings;
    // serve() from code has no APP: its script, which every worker runs again, is the app.
    const entry = app ? parseAppSpec(app).file : process.argv[1];
    const files = [...(config ? [config] : []), ...reloadExtraFiles];
    const watcher = new SourceWatcher({
      entry, files, log: this.logger, onChange: (changed) => this.onSourceChange(changed),
    });
    this.sourceWatcher = watcher;
    await watcher.start();
    if (this.stopState) watcher.close();
  }

  /** --reload: some source files changed; reload as HUP does, also after a failed boot (it may be the fix). */
  private onSourceChange(changed: string[]): void {
    if (this.stopState) return;
    const shown = changed.map((file) => (file.startsWith(`${process.cwd()}${path.sep}`) ? path.relative(process.cwd(), file) : file));
    this.logger.info(`Reloading: ${shown.join(', ')} changed`);
    void this.reload();
  }

  /** --reload: a worker exited with a boot or app-load error before it was ready (the app does not load). */
  private failedToBootUnderReload(worker: WorkerHandle, code: number | null): boolean {
    return this.settings.reload && !this.stopState && !worker.retired && worker.readyAt === undefined &&
      (code === EXIT.APP_LOAD_ERROR || code === EXIT.WORKER_BOOT_ERROR);
  }

  /**
   * --reload: the app does not load; the workers still serving (the previous version's) go on, and no worker is
   * spawned until the next change, instead of halting (a first boot) or respawning in a loop.
   */
  private waitForChange(worker: WorkerHandle): void {
    if (this.rollback && worker.generation === this.generation) this.abandonRollout(`new worker (pid:${worker.pid}) could not load the app`);
    if (!this.waitingForChange) this.logger.error('The app failed to load: waiting for a source file to change (--reload)');
    this.waitingForChange = true;
  }

  /** A HUP's new worker failed to boot: back to the previous configuration, whose workers keep serving. */
  private abandonRollout(why: string): void {
    const { generation, settings } = this.rollback!;
    this.rollback = undefined;
    this.logger.error(`Reload stopped: ${why}; the previous workers keep serving (send HUP to retry)`);
    this.applyEnv(this.workerSettings.env, settings.env);
    this.generation = generation;
    this.workerSettings = settings;
  }

  /** A worker reported TERM/INT/QUIT: unless the master got it too (a group signal), stop that worker alone. */
  private onWorkerSignal(worker: WorkerHandle, signal: 'SIGTERM' | 'SIGINT' | 'SIGQUIT'): void {
    if (this.stopState || this.preStop || !worker.live) return;
    this.logger.info(`Worker (pid:${worker.pid}) got ${signal}`);
    this.metrics.restarted('signal');
    this.stopWorker(worker, signal === 'SIGTERM');
    this.manageWorkers();
  }

  /**
   * --max-worker-memory: a ready worker above it is replaced through the graceful path, one at a time (only
   * while every worker is ready and none is missing). In reuse-port mode its replacement is ready before it stops
   * (its socket keeps the port served), otherwise it retires at once and is respawned, as for --max-requests.
   */
  private recycleIfOverMemory(worker: WorkerHandle): void {
    const limit = this.settings.maxWorkerMemory;
    if (limit <= 0 || worker.lastStatus.rss <= limit || worker.state !== 'ready' || this.rollback) return;
    const all = [...this.workers.values()];
    if (all.length < this.target || all.some((w) => w.state !== 'ready')) return;
    this.logger.info(`Worker (pid:${worker.pid}) uses ${formatByteSize(worker.lastStatus.rss)}, above --max-worker-memory ` +
      `${formatByteSize(limit)}: replacing it`);
    this.metrics.restarted('memory');
    if (this.listeners.some((listener) => listener.reusePort)) worker.markReplacing();
    else this.stopWorker(worker, true);
    this.manageWorkers();
  }

  private onTick(): void {
    this.maybePromote();
    const now = performance.now();
    this.watchdog.beat(now);
    const { timeoutMs } = durationsOf(this.settings);
    const { minUptimeMs } = durationsOf(this.workerSettings);
    for (const worker of this.workers.values()) {
      if (worker.killAt !== undefined && now >= worker.killAt) worker.kill();
      if (worker.state === 'booting' && worker.bootDeadline !== undefined && now >= worker.bootDeadline) {
        this.logger.error(`Worker (pid:${worker.pid}) was not ready within --boot-timeout ${this.workerSettings.bootTimeout} s`);
        worker.timeOutBoot();
        this.metrics.restarted('timeout');
      }
      if (worker.readyAt !== undefined) this.crashBackoff.survived(worker.age, now - worker.startedAt, minUptimeMs);
      // Until it is ready a worker answers to --boot-timeout only (its app may load for longer than --timeout).
      if (timeoutMs <= 0 || this.stopState?.killed || worker.state === 'killed' || worker.state === 'booting') continue;
      if (worker.abortedAt === undefined && now - worker.lastSeen > timeoutMs) {
        this.logger.critical(`WORKER TIMEOUT (pid:${worker.pid})`);
        worker.abort();
        this.metrics.restarted('timeout');
      } else if (worker.abortedAt !== undefined && now - worker.abortedAt >= ABORT_GRACE_MS) {
        worker.kill();
      }
    }
    if (this.crashBackoff.due(now)) this.manageWorkers();
    const stop = this.stopState;
    if (stop && !stop.killed && now >= stop.deadline) {
      stop.killed = true;
      for (const worker of this.workers.values()) worker.kill();
      setTimeout(() => this.finishStop(), QUICK_STOP_MS).unref?.();
    }
  }

  /** The next time onTick() has something to do (see MasterLoop): a worker's deadline, the stop's, the watchdog's. */
  private nextDeadline(): number {
    const { timeoutMs } = durationsOf(this.settings);
    const stop = this.stopState;
    let next = Math.min(this.watchdog.dueAt, stop && !stop.killed ? stop.deadline : Infinity);
    for (const worker of this.workers.values()) next = Math.min(next, worker.nextDeadline(stop?.killed ? 0 : timeoutMs, ABORT_GRACE_MS));
    return next;
  }

  /** Stops the master: closes the listeners, stops every worker (gracefully or not), then exits. */
  stop(graceful: boolean): void {
    if (this.stopState) return;
    clearTimeout(this.preStop);
    this.preStop = undefined;
    const grace = graceful ? durationsOf(this.settings).gracefulMs : QUICK_STOP_MS;
    this.stopState = { graceful, deadline: performance.now() + grace, killed: false };
    this.loop.wake();
    // While two masters serve (USR2), the other one serves on: systemd must not hear that the service stops, and
    // the unix socket files stay (Gunicorn's rule).
    const upgrading = this.newMaster !== undefined || this.oldMasterPid !== undefined;
    if (!upgrading) this.notifier.stopping(graceful ? 'Stopping gracefully' : 'Stopping');
    for (const listener of this.listeners) listener.close(upgrading);
    for (const worker of this.workers.values()) worker.send({ type: 'stop', graceful });
    if (this.workers.size === 0) this.finishStop();
  }

  /**
   * TERM: serve on for --pre-stop-delay (a load balancer may still send new connections until it has seen the
   * endpoint go), then stop gracefully. A second TERM during the delay stops at once.
   */
  private stopAfterPreStopDelay(): void {
    const { preStopDelayMs } = durationsOf(this.settings);
    if (preStopDelayMs <= 0 || this.preStop) {
      this.stop(true);
      return;
    }
    this.logger.info(`Pre-stop delay: serving ${this.settings.preStopDelay} s more before draining`);
    this.preStop = setTimeout(() => this.stop(true), preStopDelayMs);
  }

  /** A second TERM/INT during a graceful stop: tell the workers to quit now and kill them two seconds later. */
  private escalate(): void {
    const stop = this.stopState!;
    stop.graceful = false;
    stop.deadline = Math.min(stop.deadline, performance.now() + QUICK_STOP_MS);
    for (const worker of this.workers.values()) worker.send({ type: 'stop', graceful: false });
  }

  /** Stops everything because of a fatal condition (a worker failed to boot) and exits with `code`. */
  halt(reason: string, code: number): void {
    this.haltReason = reason;
    this.exitCode = code;
    this.stop(false);
  }

  private finishStop(): void {
    if (!this.finish) return;
    this.loop.stop();
    this.metricsServer?.close();
    this.statsd?.close();
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    this.logger.info('Shutting down: Master');
    if (this.haltReason) this.logger.info(`Reason: ${this.haltReason}`);
    this.control?.close();
    this.pidfile?.unlink();
    this.sourceWatcher?.close();
    const finish = this.finish;
    this.finish = undefined;
    void awaitHook(this.logger, 'onExit', this.settings.onExit, this.hookView).then(() => finish(this.exitCode));
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
    if (this.stopState || this.preStop) return;
    this.waitingForChange = false;
    this.logger.info('Hang up: Master');
    this.notifier.reloading('Reloading');
    let next: Settings;
    let identity: ProcessIdentity | undefined;
    try {
      next = await resolveSettings(this.sources);
      identity = workerIdentity(next);
      this.checkTls(next, identity, () => this.listeners.some((listener) => listener.reusePort));
    } catch (error) {
      this.logger.error(`Reload failed, keeping the current configuration: ${(error as Error).message}`);
      this.notifier.ready('Reload failed, serving with the current configuration');
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
    if (next.reusePort !== this.settings.reusePort) {
      this.logger.warning('Reload: reusePort changes only with a restart; keeping the current mode');
      next.reusePort = this.settings.reusePort;
    }
    if (this.listeners.some((listener) => listener.reusePort) && this.proxyHeadersUnread(next)) {
      this.logger.warning('Reload: reuse-port mode cannot read PROXY headers; keeping --proxy-protocol off');
      next.proxyProtocol = 'off';
    }
    const unservable = protocolsProblem(next, this.runtime, this.listeners.some((listener) => listener.reusePort));
    if (unservable) {
      this.logger.warning(`Reload: ${unservable}; keeping --http-protocols ${this.settings.httpProtocols}`);
      next.httpProtocols = this.settings.httpProtocols;
    }
    this.applyEnv(this.settings.env, next.env);
    this.keepControlSocket(next);
    await this.rebind(next);
    if (next.metricsBind !== this.settings.metricsBind) {
      this.logger.warning('Reload: metricsBind changes only with a restart; keeping the current one');
      next.metricsBind = this.settings.metricsBind;
    }
    this.reloadStatsd(next);
    if (next.pidfile !== this.settings.pidfile) {
      this.pidfile?.unlink();
      this.pidfile = next.pidfile ? new Pidfile(next.pidfile) : undefined;
      this.pidfile?.create();
    }
    this.rollback ??= { generation: this.generation, settings: this.workerSettings };
    this.settings = next;
    this.identity = identity;
    this.handOverFiles();
    this.workerSettings = next;
    this.target = this.workerCount(next);
    this.generation = ++this.newestGeneration;
    this.awaitingReady = 'reload';
    await awaitHook(this.logger, 'onReload', next.onReload, this.hookView);
    this.manageWorkers();
  }

  /** Keeps the listeners whose bind is unchanged, opens the new ones and closes the dropped ones. */
  private async rebind(next: Settings): Promise<void> {
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((bind, i) => bind === b[i]);
    if (same(this.settings.bind, next.bind)) return;
    if (this.socketActivated) {
      this.logger.warning('Reload: the sockets come from systemd; --bind changes take a restart of the socket unit');
      next.bind = this.settings.bind;
      return;
    }
    const keep = this.listeners.filter((listener) => next.bind.includes(listener.bind));
    const added = next.bind.filter((bind) => !keep.some((listener) => listener.bind === bind));
    let opened: Listener[];
    try {
      opened = await withUmask(next.umask, () => createListeners(added, { ...this.listenOptions(next), attempts: 1 }));
    } catch (error) {
      this.logger.error(`Reload: ${(error as Error).message}; keeping the current sockets`);
      next.bind = this.settings.bind;
      return;
    }
    for (const listener of this.listeners) if (!keep.includes(listener)) listener.close();
    for (const listener of opened) this.logger.info(`Listening at: ${listener.url} (${process.pid})`);
    this.listeners = next.bind.map((bind) => [...keep, ...opened].find((listener) => listener.bind === bind)!);
  }

  /** The number of workers the settings ask for; `auto` is the CPUs this process may use, logged with why. */
  private workerCount(settings: Settings): number {
    if (settings.workers !== 'auto') return settings.workers;
    const { count, reason } = allowedCpus();
    this.logger.info(`Using ${count} worker${count === 1 ? '' : 's'} (${reason})`);
    return count;
  }

  /**
   * Gives the workers' user the files it must write: the unix sockets (connecting needs write permission on
   * them) and the log files (a worker reopens them on USR1, after the master, which creates a rotated file anew).
   * The pidfile stays the master's, which writes and removes it: the app's user could otherwise point it at
   * another process.
   */
  private handOverFiles(): void {
    if (!this.identity) return;
    const { settings } = this;
    const sockets = this.listeners.filter((listener) => listener.url.startsWith('unix:')).map((l) => l.url.slice(5));
    const logs = [settings.errorLog, settings.accessLog].filter((file): file is string => file !== null && file !== '-');
    handOver([...sockets, ...logs], this.identity);
  }

  /** Tells systemd the master serves once the workers of the boot or of a reload are all ready. */
  private notifyIfReady(): void {
    if (!this.awaitingReady) return;
    const ready = [...this.workers.values()].filter((w) => w.generation === this.generation && w.state === 'ready').length;
    if (ready < this.target) return;
    const status = `Serving with ${ready} worker(s)`;
    // A USR2 master claims the service as its main process (the unit needs NotifyAccess=all for that).
    if (this.awaitingReady === 'boot' && this.oldMasterPid !== undefined) this.notifier.mainPid(status);
    else this.notifier.ready(status);
    this.awaitingReady = undefined;
  }

  /**
   * USR2: starts a new master with this one's sockets (binary upgrade). Refused while one runs, and in a new
   * master that has not been promoted yet, as Gunicorn's reexec is.
   */
  private reexec(): void {
    if (this.stopState) return;
    if (this.newMaster) {
      this.logger.warning(`USR2 refused: the new master (pid:${this.newMaster.pid}) of an upgrade is running; ` +
        'TERM this master to finish the upgrade, or TERM the new one to roll back');
      return;
    }
    if (this.oldMasterPid !== undefined) {
      this.logger.warning(`USR2 refused: this master waits for the old master (pid:${this.oldMasterPid}) to exit`);
      return;
    }
    const { argv, cwd, env } = this.sources;
    callHook(this.logger, 'preExec', this.settings.preExec, this.hookView);
    const child = spawnNewMaster({
      runtime: this.runtime, argv, cwd, env, listeners: this.listeners, socketActivated: this.socketActivated,
      notifySocket: this.notifier.socket, watchdogMs: this.watchdog.intervalMs,
    });
    if (child.pid === undefined) {
      child.on('error', (error) => this.logger.error(`USR2: cannot start a new master: ${error.message}`));
      return;
    }
    this.newMaster = child;
    this.logger.info(`Binary upgrade: started a new master (pid:${child.pid}); once it serves, TERM this master ` +
      `(pid:${process.pid}), or WINCH it first to stop its workers and keep a way back (HUP)`);
    child.on('exit', (code, signal) => this.onNewMasterExit(child, code, signal));
    child.on('error', (error) => this.logger.error(`New master (pid:${child.pid}): ${error.message}`));
  }

  /** The new master of an upgrade exited while this master lives: it failed to boot, or it was rolled back. */
  private onNewMasterExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.newMaster !== child) return;
    this.newMaster = undefined;
    const how = signal ? `was sent ${signal}` : `exited with code ${code}`;
    const line = `New master (pid:${child.pid}) ${how}; this master (pid:${process.pid}) serves on` +
      (this.target === 0 ? ' without workers: HUP starts them again' : '');
    if (code === 0 || signal === 'SIGTERM' || signal === 'SIGQUIT' || signal === 'SIGINT') this.logger.info(line);
    else this.logger.error(line);
    if (!this.stopState) this.notifier.mainPid(`Serving again after the upgrade ended (pid:${child.pid})`);
  }

  /**
   * WINCH during an upgrade: this (old) master stops its workers gracefully and keeps its sockets, so that HUP
   * can bring workers back (roll back) until it gets TERM. Ignored otherwise: it would leave nothing serving.
   */
  private handleWinch(): void {
    if (!this.newMaster || this.stopState) {
      this.logger.info('Ignoring WINCH: no binary upgrade (USR2) in progress');
      return;
    }
    this.logger.info('Stopping the workers gracefully (WINCH); this master keeps its sockets: HUP brings workers back, TERM ends it');
    this.target = 0;
    this.manageWorkers();
  }

  /**
   * --metrics-bind: serves /metrics, /healthz and /readyz. A new master of a binary upgrade waits for its old
   * master to free the address; any other master cannot start without it.
   */
  private async startMetricsServer(upgrading: boolean): Promise<void> {
    const bind = this.settings.metricsBind;
    if (bind === null) return;
    this.metricsServer = new MetricsServer(bind, {
      metricsText: () => renderPrometheus({
        metrics: this.metrics, workers: this.workers.values(), target: this.target, uptimeS: performance.now() / 1000,
        version: VERSION, runtime: `${this.runtime.name} ${this.runtime.version}`,
      }),
      // Not ready from TERM on, --pre-stop-delay included: that is when a load balancer should stop sending.
      ready: () => !this.stopState && !this.preStop && [...this.workers.values()].some((w) => w.state === 'ready' || w.state === 'replacing'),
    }, () => this.logger);
    try {
      await this.metricsServer.listen(upgrading);
    } catch (error) {
      throw new ConfigError(`--metrics-bind ${bind}: ${(error as Error).message}`);
    }
  }

  /** Starts, replaces or stops the statsd reporter as `next` says (at boot and on HUP). */
  private reloadStatsd(next: Settings): void {
    if (this.statsd && sameStatsd(next, this.settings)) return;
    this.statsd?.close();
    this.statsd = next.statsdHost === null
      ? undefined
      : new StatsdReporter(next, this.metrics, () => this.workers.size, () => this.logger);
  }

  /** A new master whose old master is gone (it was re-parented) takes over: Gunicorn's maybe_promote_master. */
  private maybePromote(): void {
    if (this.oldMasterPid === undefined || process.ppid === this.oldMasterPid) return;
    this.logger.info(`Master has been promoted (the old master pid:${this.oldMasterPid} is gone).`);
    this.oldMasterPid = undefined;
    if (this.pidfile && this.settings.pidfile) this.pidfile.rename(this.settings.pidfile);
    this.control?.rename(this.controlSocketFile());
  }

  /**
   * Opens the control socket once the first workers are spawned (Gunicorn's order). A new master of a USR2
   * upgrade binds `<path>.2` while the old master still serves the path, and moves it there when promoted.
   */
  private async openControlSocket(): Promise<void> {
    if (this.settings.controlSocketDisable) return;
    const file = this.controlSocketFile();
    const control = new ControlServer(this.oldMasterPid === undefined ? file : `${file}.2`, this, () => this.logger);
    if (!(await control.open(this.settings.controlSocketMode))) return;
    if (this.finish) this.control = control;
    else control.close();
  }

  /** HUP keeps the control socket where it is: another path (or --no-control-socket) takes a restart, said once. */
  private keepControlSocket(next: Settings): void {
    if (!this.control || this.oldMasterPid !== undefined) return;
    const wanted = next.controlSocketDisable ? 'none' : controlSocketPath(next, this.sources.env, this.sources.cwd);
    if (wanted !== this.control.file) {
      this.logger.warning(`Reload: the control socket stays at ${this.control.file} (${wanted} takes a restart)`);
    }
  }

  /** The control socket's path for the current settings (as `tsgunicorn ctl` finds it). */
  private controlSocketFile(): string {
    return controlSocketPath(this.settings, this.sources.env, this.sources.cwd);
  }

  /** TERM (graceful) or INT/QUIT: starts the stop, or hurries one already under way. */
  shutdown(graceful: boolean): void {
    if (this.stopState) this.escalate();
    else if (graceful) this.stopAfterPreStopDelay();
    else this.stop(false);
  }

  /** TTIN, `count` times: returns the new number of workers. */
  addWorkers(count: number): number {
    this.target += count;
    this.manageWorkers();
    return this.target;
  }

  /** TTOU, `count` times (never below one worker): returns the new number of workers. */
  removeWorkers(count: number): number {
    this.target = Math.max(1, this.target - count);
    this.manageWorkers();
    return this.target;
  }

  /** USR1: reopens the master's log files, then the workers'. */
  reopenLogs(): void {
    this.logger.reopenFiles();
    this.handOverFiles();
    for (const worker of this.workers.values()) worker.send({ type: 'reopen-logs' });
  }

  /**
   * Stops one live worker gracefully (`tsgunicorn ctl worker kill`) and spawns another in its place; in reuse-port
   * mode the new one is ready before the old one stops (its socket keeps the port served), as --max-worker-memory.
   */
  killWorker(pid: number): boolean {
    const worker = this.workers.get(pid);
    if (!worker?.live || this.stopState) return false;
    this.logger.info(`Stopping worker (pid:${pid}) on request of the control socket`);
    if (this.listeners.some((listener) => listener.reusePort)) worker.markReplacing();
    else this.stopWorker(worker, true);
    this.manageWorkers();
    return true;
  }

  /** The master and its workers now, for `tsgunicorn ctl stats`. */
  controlStats(): MasterStats {
    const now = performance.now();
    const seconds = (ms: number) => Math.round(ms / 100) / 10;
    return {
      pid: process.pid,
      version: VERSION,
      runtime: `${this.runtime.name} ${this.runtime.version}`,
      engine: this.engineDescription(),
      uptimeSeconds: seconds(now - this.startedAt),
      targetWorkers: this.target,
      workers: [...this.workers.values()].sort((a, b) => a.slot - b.slot || a.age - b.age).map((worker) => ({
        pid: worker.pid,
        slot: worker.slot,
        state: worker.state,
        generation: worker.generation,
        ageSeconds: seconds(now - worker.startedAt),
        heartbeatAgeSeconds: seconds(now - worker.lastSeen),
        requests: worker.lastStatus.requests,
        inFlight: worker.lastStatus.active,
        rssBytes: worker.lastStatus.rss,
        lagMs: worker.lastStatus.lagMs,
      })),
    };
  }
}

/** Which outgoing worker goes first: those asking for a replacement, then the oldest. */
function replaceOrder(worker: WorkerHandle): number {
  return (worker.state === 'replacing' ? 0 : Number.MAX_SAFE_INTEGER / 2) + worker.age;
}
