/**
 * `--request-timeout`: a handler that has not produced its response in time has its request's signal aborted,
 * and the client gets 503 with `Connection: close` while the worker serves on. One sweep per worker times the
 * pending answers out (no timer per request); every request gets the same timeout, so the pending answers are
 * kept in the order they started and the sweep stops at the first one still in time. Nothing is built when the
 * setting is off.
 */
import type { Logger } from '../glogging.ts';
import { errorResponse, isResponse } from './app-response.ts';

/** Sweeps per timeout: a request is timed out after 1 to 1.25 timeouts. */
const SWEEPS_PER_TIMEOUT = 4;
const MIN_SWEEP_MS = 10;

/** A request whose handler is still working, and what to do if it runs out of time. */
interface PendingAnswer {
  startedAt: number;
  timedOut(): void;
}

/** The reason a timed-out request's signal aborts with. */
function requestTimeoutError(timeoutMs: number): DOMException {
  return new DOMException(`The request was not answered within --request-timeout (${timeoutMs / 1000} s)`, 'TimeoutError');
}

/** What the client of a timed-out request gets (the engine adds `Connection: close`). */
export function timeoutResponse(): Response {
  return errorResponse(503, 'Service Unavailable');
}

/** The worker's pending answers under --request-timeout. */
export class RequestDeadlines {
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  /** Pending answers in the order their requests started (a Set keeps insertion order). */
  private readonly pending = new Set<PendingAnswer>();
  private sweeper?: ReturnType<typeof setInterval>;

  constructor(timeoutMs: number, logger: Logger) {
    this.timeoutMs = timeoutMs;
    this.logger = logger;
  }

  /**
   * Settles with the handler's answer or, when it is not there in time, logs one error line and settles with
   * what `timedOut` makes of the abort reason: it aborts the request's signal and returns the 503 to send
   * (timeoutResponse(), closing its connection as the engine does). A late answer's body is cancelled.
   */
  within(answer: Promise<Response>, method: string, url: string, timedOut: (reason: DOMException) => Response): Promise<Response> {
    return new Promise((resolve, reject) => {
      const entry: PendingAnswer = {
        startedAt: performance.now(),
        timedOut: () => {
          this.logger.error(`Request timeout: ${method} ${url} not answered within ${this.timeoutMs / 1000} s`);
          resolve(timedOut(requestTimeoutError(this.timeoutMs)));
        },
      };
      this.add(entry);
      answer.then((response) => {
        if (!this.pending.delete(entry) && isResponse(response)) response.body?.cancel().catch(() => {});
        resolve(response);
      }, (error: unknown) => {
        this.pending.delete(entry);
        reject(error);
      });
    });
  }

  private add(entry: PendingAnswer): void {
    this.pending.add(entry);
    if (this.sweeper) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(Math.ceil(this.timeoutMs / SWEEPS_PER_TIMEOUT), MIN_SWEEP_MS));
    this.sweeper.unref();
  }

  private sweep(): void {
    const expiredBefore = performance.now() - this.timeoutMs;
    for (const entry of this.pending) {
      if (entry.startedAt > expiredBefore) return;
      this.pending.delete(entry);
      entry.timedOut();
    }
  }
}

/** The worker's request deadlines, or undefined when --request-timeout is off. */
export function requestDeadlinesOf(requestTimeoutMs: number, logger: Logger): RequestDeadlines | undefined {
  return requestTimeoutMs > 0 ? new RequestDeadlines(requestTimeoutMs, logger) : undefined;
}
