/**
 * Crash-loop backoff: a worker that dies within --min-uptime of its start makes the master wait before it spawns
 * again, 1 s the first time and twice as long after each such death, up to 30 s (as PM2's exponential restart
 * delay and systemd's RestartSteps do). A worker spawned after the last such death that lives past
 * --min-uptime resets the delay.
 */

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;

/** The master's crash-loop state. */
export class CrashBackoff {
  /** The delay the last early death got (0: none since the last reset). */
  private delayMs = 0;
  /** performance.now() before which nothing is spawned. */
  private until = 0;
  /** Spawn order (WorkerHandle.age) of the last worker that died early. */
  private lastCrashAge = 0;

  /** A worker of spawn order `age` died `uptimeMs` after it started: the delay before the next spawn (0: none). */
  onExit(age: number, uptimeMs: number, minUptimeMs: number, now: number): number {
    if (uptimeMs >= minUptimeMs) return 0;
    this.delayMs = this.delayMs === 0 ? FIRST_DELAY_MS : Math.min(this.delayMs * 2, MAX_DELAY_MS);
    this.until = now + this.delayMs;
    this.lastCrashAge = Math.max(this.lastCrashAge, age);
    return this.delayMs;
  }

  /** Whether spawning waits now. */
  waiting(now: number): boolean {
    return now < this.until;
  }

  /** Whether a delay is over and its spawns are due (once per delay). */
  due(now: number): boolean {
    if (this.until === 0 || now < this.until) return false;
    this.until = 0;
    return true;
  }

  /** A worker (spawn order `age`, up for `uptimeMs`) proves the crashes are over: the next delay starts at 1 s. */
  survived(age: number, uptimeMs: number, minUptimeMs: number): void {
    if (this.delayMs > 0 && age > this.lastCrashAge && uptimeMs >= minUptimeMs) this.delayMs = 0;
  }
}
