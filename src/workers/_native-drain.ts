/**
 * When a native server (Deno.serve, Bun.serve) stops in a drain. Their stop closes the listener and every idle
 * keep-alive connection at once (probed on Deno 2.9 and Bun 1.4.5), and neither tells which connections are open
 * or idle. Closing an idle connection while its client sends a request on it loses that request: three HUPs under
 * eight keep-alive GET loops, stopping at once, lost 15 of 23,792 requests on Deno and 18 of 30,312 on Bun (0-2
 * serving on). So a worker watches its own requests, on a timer (nothing per request): one that has started and
 * finished none for drainIdleMs() has no connection whose client may still reuse it (clients give up an idle
 * connection sooner: undici and Node's agent after 4 s) and stops at once, as Gunicorn's workers do; one that has
 * served lately serves on, every response saying `Connection: close`, until drainIdleMs() after its last request
 * before the drain, then stops. With keep-alive off, only a connection accepted without a request yet can be
 * waiting: the same rule with a short grace.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../glogging.ts';
import { drainIdleMs, QUIET_CONNECTION_GRACE_MS } from '../http/connections.ts';
import { durationsOf, type Settings } from '../settings.ts';
import type { RequestHooks } from './base.ts';

/** How often the worker's activity is sampled: a drain may serve on up to this much longer than it must. */
const SAMPLE_MS = 250;

/** Watches a worker's requests to tell, when its drain starts, how long its native server must serve on. */
export class NativeDrain {
  private readonly activity: () => number;
  private readonly idleMs: number;
  private readonly logger: Logger;
  private readonly sampler: ReturnType<typeof setInterval>;
  private seen: number;
  /** performance.now() of the sample that last saw a request start or finish (-Infinity: none yet). */
  private lastActiveAt = -Infinity;

  constructor(hooks: Pick<RequestHooks, 'activity'>, settings: Settings, logger: Logger) {
    this.activity = () => hooks.activity();
    this.idleMs = drainIdleMs(durationsOf(settings).keepAliveMs) || QUIET_CONNECTION_GRACE_MS;
    this.logger = logger;
    this.seen = this.activity();
    this.sampler = setInterval(() => this.sample(), SAMPLE_MS);
    this.sampler.unref?.();
  }

  /**
   * Runs `stop` (the server's stop or shutdown) once no client can be reusing an idle connection: at once when the
   * worker has been quiet for the idle time, otherwise when that time has passed since its last request.
   */
  async stopWhenIdle(stop: () => Promise<unknown>): Promise<unknown> {
    this.sample();
    clearInterval(this.sampler);
    const serveOnMs = Math.max(0, Math.ceil(this.lastActiveAt + this.idleMs - performance.now()));
    if (serveOnMs === 0) {
      this.logger.debug(`Draining: no request for ${this.idleMs / 1000} s, closing idle connections now`);
    } else {
      this.logger.debug(`Draining: serving on ${(serveOnMs / 1000).toFixed(1)} s (responses say Connection: close), ` +
        'then closing idle connections');
      await sleep(serveOnMs);
    }
    return stop();
  }

  private sample(): void {
    const now = this.activity();
    if (now === this.seen) return;
    this.seen = now;
    this.lastActiveAt = performance.now();
  }
}
