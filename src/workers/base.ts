/**
 * What a serving engine is: it serves a Fetch handler on a worker's sockets, stops accepting, drains, and
 * reports every request to the worker around it, which keeps the counts (Gunicorn: one worker kind per file in
 * workers/; here the process lifecycle is src/worker.ts and only the serving differs).
 */
import type { AccessEntry, Logger } from '../glogging.ts';
import type { FetchHandler } from '../http/types.ts';
import type { WorkerSocket } from '../messages.ts';
import type { Runtime } from '../runtime/index.ts';
import type { Settings } from '../settings.ts';
import type { WebSocketHandler } from '../websocket/app-handler.ts';

/** What an engine tells the worker about each request, and asks of it. */
export interface RequestHooks {
  /** A request has arrived; the handler is about to run. */
  onRequestStart(): void;
  /** True when the response should close its connection (draining, keep-alive off, the last request). */
  shouldCloseConnection(): boolean;
  /**
   * Whether engines read the clock when a request starts (performance.now()): the access log or the metrics want
   * its duration. Off, an engine reads nothing it would not read anyway.
   */
  readonly timed: boolean;
  /**
   * The request has been answered (or abandoned by its client). With `timed` on: its method, response status and
   * start time; off, an engine may pass `'', 0, 0` instead. `entry`: its access-log entry, built only with the
   * access log on (`logger.accessEnabled`), and given as it is: no closure per request to build it later.
   */
  onRequestDone(entry: AccessEntry | undefined, method: string, status: number, startedAt: number): void;
  /** A number that changes whenever a request starts or finishes (a native server's drain samples it). */
  activity(): number;
}

/** Everything an engine gets from its worker. */
export interface EngineContext {
  handler: FetchHandler;
  settings: Settings;
  logger: Logger;
  runtime: Runtime;
  hooks: RequestHooks;
  /** The app's `websocket` handler: WebSocket upgrades are served only when the app exports one. */
  websocket?: WebSocketHandler;
}

/** A serving engine of one worker, serving one kind of socket. */
export interface ServingEngine {
  /** Starts serving on `sockets`; rejects when it cannot listen on one. */
  listen(sockets: WorkerSocket[]): Promise<void>;
  /** Stops accepting new connections; requests in flight go on. */
  stopAccepting(): void;
  /** Resolves once the requests in flight have finished and the connections are closed. */
  drain(): Promise<void>;
}

/** Creates an engine for a worker. */
export type EngineFactory = (context: EngineContext) => ServingEngine;

/** A worker's request counts, kept in this one place whatever engines serve them. */
export class RequestCounters {
  /** Requests that reached the handler. */
  started = 0;
  /** Requests answered or abandoned. */
  finished = 0;

  /** Requests in flight now. */
  get inFlight(): number {
    return this.started - this.finished;
  }
}
