/**
 * systemd's watchdog (WatchdogSec=): systemd sets WATCHDOG_USEC (and WATCHDOG_PID, the main process) and restarts
 * the service when no WATCHDOG=1 reaches $NOTIFY_SOCKET within that interval. The master sends it at half the
 * interval from its loop's pass (src/master-loop.ts), never from a timer of its own: a ping proves the loop runs,
 * and a master stuck in a pass stops pinging.
 */
import type { SystemdNotifier } from './systemd.ts';

/**
 * The watchdog interval in milliseconds asked of this process (sd_watchdog_enabled's rule: WATCHDOG_PID unset or
 * this pid), or undefined. Removes WATCHDOG_USEC and WATCHDOG_PID from `env`: workers are not watched.
 */
export function takeWatchdogInterval(env: Record<string, string | undefined>, pid = process.pid): number | undefined {
  const { WATCHDOG_USEC: usec, WATCHDOG_PID: watchedPid } = env;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  const micros = Number(usec);
  if (!usec || !Number.isSafeInteger(micros) || micros <= 0) return undefined;
  if (watchedPid && Number(watchedPid) !== pid) return undefined;
  return micros / 1000;
}

/** Sends WATCHDOG=1 at half the interval, when the master's loop asks (`beat`). */
export class SystemdWatchdog {
  /** The interval systemd watches, in ms (undefined: no watchdog), for a USR2 master to be watched too. */
  readonly intervalMs?: number;
  private readonly notifier: SystemdNotifier;
  /** performance.now() of the last WATCHDOG=1 sent. */
  private lastBeat = -Infinity;

  constructor(intervalMs: number | undefined, notifier: SystemdNotifier) {
    this.intervalMs = notifier.socket ? intervalMs : undefined;
    this.notifier = notifier;
  }

  /** When the next WATCHDOG=1 is due (performance.now() time), Infinity without a watchdog. */
  get dueAt(): number {
    return this.intervalMs === undefined ? Infinity : this.lastBeat + this.intervalMs / 2;
  }

  /** Sends WATCHDOG=1 if it is due at `now`. */
  beat(now: number): void {
    if (now < this.dueAt) return;
    this.lastBeat = now;
    this.notifier.watchdog();
  }
}
