/**
 * A worker's request statistics for the metrics (--metrics-bind, --statsd-host): requests by response status and
 * method, and a histogram of their durations. Counted in typed arrays (no allocation per request) and handed to
 * the master with each heartbeat as what changed since the previous one, so that the master's sums only grow: a
 * worker that dies loses at most what it counted since its last heartbeat.
 */

import type { Settings } from './settings.ts';

/** Whether workers count their requests: the metrics (--metrics-bind) or statsd (--statsd-host) are on. */
export function countsRequests(settings: Pick<Settings, 'metricsBind' | 'statsdHost'>): boolean {
  return settings.metricsBind !== null || settings.statsdHost !== null;
}

/** The methods counted by name; any other counts as `other`. */
export const REQUEST_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'other'] as const;

/** The upper bounds of the duration histogram's buckets in seconds (Prometheus' defaults), then +Inf. */
export const DURATION_BUCKETS_S: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Status codes are three digits: 100-999 (node:http lets a handler set any of them). */
const STATUS_CODES = 1000;
const OTHER_METHOD = REQUEST_METHODS.length - 1;

/** What a worker counted since its previous heartbeat. */
export interface RequestStatsDelta {
  /** `[status, method, count]` for each status and method (a REQUEST_METHODS name) seen. */
  requests: [number, string, number][];
  /** Requests per duration bucket: DURATION_BUCKETS_S, then +Inf (not cumulative). */
  buckets: number[];
  /** The sum of the durations in each bucket, in seconds. */
  bucketSums: number[];
}

/** Where a method is counted; a switch, since method strings are interned and compare by pointer. */
function methodIndex(method: string): number {
  switch (method) {
    case 'GET': return 0;
    case 'HEAD': return 1;
    case 'POST': return 2;
    case 'PUT': return 3;
    case 'DELETE': return 4;
    case 'PATCH': return 5;
    case 'OPTIONS': return 6;
    default: return OTHER_METHOD;
  }
}

/** A worker's request counts since its last heartbeat. */
export class RequestStats {
  /** Indexed by status * REQUEST_METHODS.length + method index. */
  private readonly byStatusAndMethod = new Float64Array(STATUS_CODES * REQUEST_METHODS.length);
  private readonly buckets = new Float64Array(DURATION_BUCKETS_S.length + 1);
  private readonly bucketSums = new Float64Array(DURATION_BUCKETS_S.length + 1);
  private counted = false;

  /** Counts one request answered with `status` that took `durationMs`. */
  record(method: string, status: number, durationMs: number): void {
    const code = status >= 100 && status < STATUS_CODES ? status : 0;
    this.byStatusAndMethod[code * REQUEST_METHODS.length + methodIndex(method)]++;
    const seconds = durationMs > 0 ? durationMs / 1000 : 0;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS_S.length && seconds > DURATION_BUCKETS_S[bucket]) bucket++;
    this.buckets[bucket]++;
    this.bucketSums[bucket] += seconds;
    this.counted = true;
  }

  /** What was counted since the last call (undefined: nothing), and starts counting afresh. */
  takeDelta(): RequestStatsDelta | undefined {
    if (!this.counted) return undefined;
    this.counted = false;
    const requests: RequestStatsDelta['requests'] = [];
    const counts = this.byStatusAndMethod;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] === 0) continue;
      requests.push([Math.floor(i / REQUEST_METHODS.length), REQUEST_METHODS[i % REQUEST_METHODS.length], counts[i]]);
    }
    const delta = { requests, buckets: Array.from(this.buckets), bucketSums: Array.from(this.bucketSums) };
    counts.fill(0);
    this.buckets.fill(0);
    this.bucketSums.fill(0);
    return delta;
  }
}
