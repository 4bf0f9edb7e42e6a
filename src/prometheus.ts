/**
 * The master's metrics in Prometheus' text exposition format 0.0.4: `# HELP` and `# TYPE` lines, names prefixed
 * `tsgunicorn_`, counters ending in `_total`, the duration histogram as cumulative `_bucket{le=…}`, `_sum` and
 * `_count`. Built on each scrape from the running sums (src/metrics.ts) and the worker handles.
 */
import type { ServerMetrics } from './metrics.ts';
import { DURATION_BUCKETS_S } from './request-stats.ts';
import { WORKER_STATES, type WorkerHandle } from './worker-handle.ts';

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** What a scrape shows besides the sums. */
export interface ScrapeView {
  metrics: ServerMetrics;
  workers: Iterable<WorkerHandle>;
  /** How many workers the master wants. */
  target: number;
  /** Seconds since the master started. */
  uptimeS: number;
  version: string;
  /** `node 20.11.1`, `bun 1.2.3`. */
  runtime: string;
}

/** A label value with `\`, `"` and line breaks escaped. */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `{a="1",b="2"}`, or nothing without labels. */
function labels(pairs: Record<string, string | number>): string {
  const parts = Object.entries(pairs).map(([name, value]) => `${name}="${labelValue(String(value))}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** A number as Prometheus writes it. */
function sample(value: number): string {
  return Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN';
}

/** Collects families: one HELP and TYPE header, then its samples. */
class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.lines.push(`# HELP tsgunicorn_${name} ${help}`, `# TYPE tsgunicorn_${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, pairs: Record<string, string | number> = {}): this {
    this.lines.push(`tsgunicorn_${name}${labels(pairs)} ${sample(value)}`);
    return this;
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/** Renders a scrape. */
export function renderPrometheus(view: ScrapeView): string {
  const { metrics } = view;
  const workers = [...view.workers];
  const out = new Exposition();
  out.family('requests_total', 'counter', 'Requests answered by the workers, by method, status code and status class.');
  for (const { status, method, count } of metrics.requests()) {
    out.sample('requests_total', count, { method, code: status, class: `${Math.floor(status / 100)}xx` });
  }
  out.family('request_duration_seconds', 'histogram', 'How long requests took, from their arrival to their response\'s end.');
  let cumulative = 0;
  DURATION_BUCKETS_S.forEach((bound, i) => {
    cumulative += metrics.buckets[i];
    out.sample('request_duration_seconds_bucket', cumulative, { le: bound });
  });
  cumulative += metrics.buckets[DURATION_BUCKETS_S.length];
  out.sample('request_duration_seconds_bucket', cumulative, { le: '+Inf' });
  out.sample('request_duration_seconds_sum', metrics.bucketSums.reduce((sum, s) => sum + s, 0));
  out.sample('request_duration_seconds_count', cumulative);
  out.family('requests_in_flight', 'gauge', 'Requests being answered, at the workers\' last heartbeats.');
  out.sample('requests_in_flight', workers.reduce((sum, w) => sum + w.lastStatus.active, 0));
  out.family('workers', 'gauge', 'Worker processes by state.');
  for (const state of WORKER_STATES) out.sample('workers', workers.filter((w) => w.state === state).length, { state });
  out.family('workers_target', 'gauge', 'How many workers the master keeps (--workers, TTIN/TTOU).');
  out.sample('workers_target', view.target);
  out.family('worker_restarts_total', 'counter', 'Workers replaced or respawned, by reason.');
  for (const [reason, count] of Object.entries(metrics.restarts)) out.sample('worker_restarts_total', count, { reason });
  out.family('worker_resident_memory_bytes', 'gauge', 'Each worker\'s resident set size at its last heartbeat.');
  for (const w of workers) out.sample('worker_resident_memory_bytes', w.lastStatus.rss, { slot: w.slot, pid: w.pid });
  out.family('worker_event_loop_lag_seconds', 'gauge', 'How late each worker\'s last heartbeat timer fired.');
  for (const w of workers) {
    if (w.lastStatus.lagMs !== undefined) out.sample('worker_event_loop_lag_seconds', w.lastStatus.lagMs / 1000, { slot: w.slot, pid: w.pid });
  }
  out.family('log_messages_total', 'counter', 'Warning, error, critical and exception log lines of the master and the workers.');
  for (const [level, count] of Object.entries(metrics.logged())) out.sample('log_messages_total', count, { level });
  out.family('master_uptime_seconds', 'gauge', 'Seconds since the master started.');
  out.sample('master_uptime_seconds', view.uptimeS);
  out.family('build_info', 'gauge', 'The tsgunicorn version and the runtime the master runs on.');
  out.sample('build_info', 1, { version: view.version, runtime: view.runtime });
  return out.text();
}
