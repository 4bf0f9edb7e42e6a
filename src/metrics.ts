/**
 * The master's metrics: the sums of what the workers' heartbeats report (requests by status and method, the
 * duration histogram, log lines), the worker restarts by reason, and the master's own log lines. Workers send
 * what changed since their previous heartbeat, so these sums only grow, whatever workers die or are replaced.
 * Read by the Prometheus endpoint (src/prometheus.ts) and the statsd reporter (src/statsd.ts).
 */
import { type LoggedCounts, takeLoggedCounts } from './glogging.ts';
import type { HeartbeatMessage } from './messages.ts';
import { DURATION_BUCKETS_S } from './request-stats.ts';

/** Why the master replaced a worker. */
export const RESTART_REASONS = ['timeout', 'max-requests', 'memory', 'crash', 'reload', 'signal'] as const;
/** One of RESTART_REASONS. */
export type RestartReason = (typeof RESTART_REASONS)[number];

/** The requests answered with one status to one method, since the master started. */
export interface RequestCount {
  status: number;
  /** A REQUEST_METHODS name. */
  method: string;
  count: number;
}

/** The master's running sums. */
export class ServerMetrics {
  /** By `status method`. */
  private readonly requestCounts = new Map<string, RequestCount>();
  /** Requests per duration bucket (DURATION_BUCKETS_S, then +Inf), not cumulative. */
  readonly buckets: number[] = DURATION_BUCKETS_S.map(() => 0).concat(0);
  /** The durations' sum per bucket, in seconds. */
  readonly bucketSums: number[] = this.buckets.map(() => 0);
  /** Worker restarts by reason. */
  readonly restarts = Object.fromEntries(RESTART_REASONS.map((reason) => [reason, 0])) as Record<RestartReason, number>;
  private readonly loggedCounts: LoggedCounts = { warning: 0, error: 0, critical: 0, exception: 0 };

  /** Adds what a heartbeat counted. */
  addHeartbeat(message: HeartbeatMessage): void {
    if (message.logged) this.addLogged(message.logged);
    const stats = message.stats;
    if (!stats) return;
    for (const [status, method, count] of stats.requests) {
      const key = `${status} ${method}`;
      const known = this.requestCounts.get(key);
      if (known) known.count += count;
      else this.requestCounts.set(key, { status, method, count });
    }
    for (let i = 0; i < this.buckets.length; i++) {
      this.buckets[i] += stats.buckets[i] ?? 0;
      this.bucketSums[i] += stats.bucketSums[i] ?? 0;
    }
  }

  /** Counts a worker the master replaces (or that died and is respawned). */
  restarted(reason: RestartReason): void {
    this.restarts[reason]++;
  }

  /** Requests by status and method, sorted by status then method. */
  requests(): RequestCount[] {
    return [...this.requestCounts.values()].sort((a, b) => a.status - b.status || a.method.localeCompare(b.method));
  }

  /** All requests counted. */
  get requestTotal(): number {
    return this.buckets.reduce((sum, count) => sum + count, 0);
  }

  /** Log lines of the workers and the master, by level. */
  logged(): LoggedCounts {
    const own = takeLoggedCounts();
    if (own) this.addLogged(own);
    return { ...this.loggedCounts };
  }

  private addLogged(counts: LoggedCounts): void {
    for (const level of Object.keys(this.loggedCounts) as (keyof LoggedCounts)[]) this.loggedCounts[level] += counts[level] ?? 0;
  }
}
