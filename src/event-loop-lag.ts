/**
 * A worker's event-loop lag: how late a 100 ms timer fires, the worst since the last heartbeat. A loop blocked by
 * the app (a long synchronous computation) shows here as the time it was blocked. perf_hooks'
 * monitorEventLoopDelay would do it in native code on Node and Bun, but Deno's is a stub that reports ~0, so one
 * timer does it the same way on all three runtimes (ten callbacks a second, nothing per request).
 */

const SAMPLE_MS = 100;

/** Measures the lag of this process's event loop. */
export class EventLoopLag {
  private expected = 0;
  private worstMs = 0;

  /** Starts sampling (the timer does not keep the process alive). */
  start(): void {
    this.expected = performance.now() + SAMPLE_MS;
    setInterval(() => {
      const now = performance.now();
      this.worstMs = Math.max(this.worstMs, now - this.expected);
      this.expected = now + SAMPLE_MS;
    }, SAMPLE_MS).unref();
  }

  /** The worst lag in milliseconds (0.1 ms steps) since the previous call, counting a timer still overdue now. */
  takeWorst(): number {
    const worst = Math.max(this.worstMs, performance.now() - this.expected, 0);
    this.worstMs = 0;
    return Math.round(worst * 10) / 10;
  }
}
