/**
 * The master's loop (Gunicorn's arbiter loop, which wakes once a second): one pass every LOOP_TICK_MS, and sooner
 * when the next deadline comes before that (a stuck worker's abort or SIGKILL, a boot deadline, the stop's, the
 * systemd watchdog's next ping), so that what is due happens at its time and not up to a tick late. One timer at a
 * time, set anew after each pass: a pass that blocks delays the next one (the watchdog relies on it), and a pass
 * never follows the previous one sooner than MIN_WAIT_MS (no busy loop, even when a deadline is reached a little
 * before the clock says so).
 */

/** The longest wait between two passes. */
export const LOOP_TICK_MS = 200;
/** The shortest wait between two passes (timers fire on a millisecond clock, a deadline may be a fraction away). */
const MIN_WAIT_MS = 1;

/** Runs `pass` until stopped: every LOOP_TICK_MS, or at `nextDeadline()` when that is sooner. */
export class MasterLoop {
  private readonly pass: () => void;
  private readonly nextDeadline: () => number;
  private readonly now: () => number;
  private timer?: ReturnType<typeof setTimeout>;
  /** When the pending pass is due (on the `now` clock). */
  private passAt = Infinity;
  private running = false;

  /**
   * `nextDeadline` returns the earliest time (on the `now` clock, performance.now() by default) at which a pass
   * has something to do, Infinity when nothing is near; it is asked after every pass.
   */
  constructor(pass: () => void, nextDeadline: () => number, now: () => number = () => performance.now()) {
    this.pass = pass;
    this.nextDeadline = nextDeadline;
    this.now = now;
  }

  /** Schedules the first pass. */
  start(): void {
    this.running = true;
    this.schedule();
  }

  /**
   * Brings the next pass forward to `nextDeadline()` when a deadline set outside a pass (a stop, a spawn) comes
   * before it; never puts it off.
   */
  wake(): void {
    if (!this.running || this.now() + this.waitMs() >= this.passAt) return;
    clearTimeout(this.timer);
    this.schedule();
  }

  /** No pass after this one (also when called from a pass). */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  private waitMs(): number {
    return Math.min(LOOP_TICK_MS, Math.max(MIN_WAIT_MS, Math.ceil(this.nextDeadline() - this.now())));
  }

  private schedule(): void {
    const wait = this.waitMs();
    this.passAt = this.now() + wait;
    this.timer = setTimeout(() => {
      this.pass();
      if (this.running) this.schedule();
    }, wait);
  }
}
