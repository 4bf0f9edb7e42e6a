/** The structured messages master and workers exchange over the IPC channel. */
import type { LoggedCounts } from './glogging.ts';
import type { RequestStatsDelta } from './request-stats.ts';
import type { HookName } from './hooks.ts';
import type { ProcessIdentity, TcpAddress } from './runtime/index.ts';
import type { Settings } from './settings.ts';

/** Worker → master: booted and serving. */
export interface ReadyMessage {
  type: 'ready';
}

/** Worker → master, about once a second from the event loop: proof of life plus counters. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  /** Requests answered (or abandoned by their client) since the worker started. */
  requests: number;
  /** Requests in flight now. */
  active: number;
  /** Requests counted since the previous heartbeat, with --metrics-bind or --statsd-host only. */
  stats?: RequestStatsDelta;
  /** Warning/error/critical/exception lines logged since the previous heartbeat, with the metrics on only. */
  logged?: LoggedCounts;
  /** Resident set size in bytes. */
  rss: number;
  /** The worst event-loop lag since the previous heartbeat, in milliseconds (src/event-loop-lag.ts). */
  lagMs?: number;
}

/** Worker → master: this worker is draining and will exit (max-requests reached, uncaught error). */
export interface RetiringMessage {
  type: 'retiring';
  /** Because of an uncaught error: it counts as a death for the crash-loop backoff. */
  crashed: boolean;
}

/** Master → worker: stop accepting and exit (after in-flight requests when graceful). */
export interface StopMessage {
  type: 'stop';
  graceful: boolean;
}

/** Master → worker: reopen log files (log rotation; USR1 on the master). */
export interface ReopenLogsMessage {
  type: 'reopen-logs';
}

/** Master → worker: the heartbeat timed out; exit now. */
export interface AbortMessage {
  type: 'abort';
}

/**
 * Worker → master: max-requests reached on sockets the worker opened itself (reuse-port). Closing them now
 * would leave the port without a listener, so the worker serves on (answering with `Connection: close`) until
 * the master stops it once its replacement is ready.
 */
export interface RecycleMessage {
  type: 'recycle';
}

/**
 * Worker → master: the worker got a stop signal and leaves it to the master. A TERM or INT often reaches the
 * whole process group (Ctrl-C, `npm start` wrappers), and then the master stops everything itself (after its
 * --pre-stop-delay); sent to this worker alone, the master stops it and spawns another.
 */
export interface SignalMessage {
  type: 'signal';
  signal: 'SIGTERM' | 'SIGINT' | 'SIGQUIT';
}

/** Messages a worker sends. */
export type WorkerMessage = ReadyMessage | HeartbeatMessage | RetiringMessage | RecycleMessage | SignalMessage;
/** Messages the master sends. */
export type MasterMessage = StopMessage | ReopenLogsMessage | AbortMessage;

/** The environment variable that carries a worker's boot description; its presence makes a process a worker. */
export const WORKER_ENV = 'TSGUNICORN_WORKER';

/**
 * A socket a worker serves: a listening fd inherited from the master (3, 4, … when mapped into stdio), or, in
 * reuse-port mode, an address the worker binds itself with SO_REUSEPORT.
 */
export type WorkerSocket = { kind: 'fd'; fd: number } | { kind: 'reuse-port'; address: TcpAddress };

/** Reads this process's boot description if it was spawned as a worker. */
export function workerBootFromEnv(env: Record<string, string | undefined> = process.env): WorkerBoot | undefined {
  const text = env[WORKER_ENV];
  return text ? (JSON.parse(text) as WorkerBoot) : undefined;
}

/** What a worker is told at spawn (as JSON in WORKER_ENV). */
export interface WorkerBoot {
  /** Stable slot 0..N-1, exported to the app as TSGUNICORN_WORKER_ID. */
  id: number;
  /** Resolved settings (functions and other non-JSON values are not carried). */
  settings: Settings;
  /** What it serves on, one entry per listener. */
  sockets: WorkerSocket[];
  /** This worker's request limit, jitter included (0 = none). */
  maxRequests: number;
  /** The user and groups to drop to before loading the app (--user, --group); absent: stay as spawned. */
  identity?: ProcessIdentity;
  /** The worker hooks set (src/hooks.ts), which the worker reads from the config file itself. */
  hooks?: HookName[];
}

/** Process exit statuses with a meaning to the master (Gunicorn's). */
export const EXIT = { OK: 0, CONFIG: 1, WORKER_BOOT_ERROR: 3, APP_LOAD_ERROR: 4 } as const;
