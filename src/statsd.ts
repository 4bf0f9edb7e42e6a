/**
 * --statsd-host: Gunicorn's statsd metrics, sent over UDP by the master once a second from the sums of the
 * workers' heartbeats (src/metrics.ts), so that no worker sends anything per request:
 * - `gunicorn.requests` and `gunicorn.request.status.<code>`: counters, the requests since the last send;
 * - `gunicorn.request.duration`: a timer in ms, one line per histogram bucket that got requests, with the bucket's
 *   mean duration and a sample rate of 1/count, so that statsd counts every request and sums their durations
 *   exactly (its percentiles are those of the bucket means);
 * - `gunicorn.workers`: a gauge, the worker processes;
 * - `gunicorn.log.<level>`: counters of warning, error, critical and exception lines (master and workers).
 * Each name gets `--statsd-prefix.` before it and the `--dogstatsd-tags` after `|#`. Lines are packed, one per
 * line, into datagrams of at most 1432 bytes (statsd's advice for Ethernet).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { parseAddress } from './address.ts';
import type { LoggedCounts, Logger } from './glogging.ts';
import type { ServerMetrics } from './metrics.ts';
import { type Settings, STATSD_DEFAULT_PORT } from './settings.ts';

const FLUSH_MS = 1000;
const MAX_DATAGRAM = 1432;

/** The settings a reporter reads. */
export type StatsdSettings = Pick<Settings, 'statsdHost' | 'statsdPrefix' | 'dogstatsdTags'>;

/** Whether two configurations send statsd the same way (a HUP that changes none keeps the reporter). */
export function sameStatsd(a: StatsdSettings, b: StatsdSettings): boolean {
  return a.statsdHost === b.statsdHost && a.statsdPrefix === b.statsdPrefix && a.dogstatsdTags === b.dogstatsdTags;
}

/** Sends the master's metrics to statsd. */
export class StatsdReporter {
  private readonly socket: dgram.Socket;
  private readonly host: string;
  private readonly port: number;
  private readonly prefix: string;
  /** `|#tags`, or nothing. */
  private readonly suffix: string;
  private readonly metrics: ServerMetrics;
  private readonly workerCount: () => number;
  private readonly logger: () => Logger;
  private readonly timer: ReturnType<typeof setInterval>;
  /** The sums at the last send. */
  private sentByStatus: Map<number, number>;
  private sentBuckets: number[];
  private sentBucketSums: number[];
  private sentLogged: LoggedCounts;

  /** Starts sending once a second; `logger` is read at each use (a HUP replaces the master's logger). */
  constructor(settings: StatsdSettings, metrics: ServerMetrics, workerCount: () => number, logger: () => Logger) {
    const address = parseAddress(settings.statsdHost!, '--statsd-host', STATSD_DEFAULT_PORT);
    if (address.kind !== 'tcp') throw new Error(`--statsd-host ${settings.statsdHost}: expected HOST:PORT`);
    this.host = address.host;
    this.port = address.port;
    this.socket = dgram.createSocket(net.isIPv6(address.host) ? 'udp6' : 'udp4');
    this.socket.on('error', (error) => this.logger().debug(`statsd: ${error.message}`));
    // Gunicorn's rule: one trailing dot, whatever the prefix ends with.
    this.prefix = settings.statsdPrefix ? settings.statsdPrefix.replace(/\.*$/, '.') : '';
    this.suffix = settings.dogstatsdTags ? `|#${settings.dogstatsdTags}` : '';
    this.metrics = metrics;
    this.workerCount = workerCount;
    this.logger = logger;
    // What was counted before this reporter started (a HUP that turned statsd on) is not sent.
    this.sentByStatus = this.byStatus();
    this.sentBuckets = [...metrics.buckets];
    this.sentBucketSums = [...metrics.bucketSums];
    this.sentLogged = metrics.logged();
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref?.();
  }

  /** Sends what changed since the last send. */
  flush(): void {
    const lines: string[] = [];
    const line = (name: string, value: string) => lines.push(`${this.prefix}${name}:${value}${this.suffix}`);
    const byStatus = this.byStatus();
    let requests = 0;
    for (const [status, count] of byStatus) {
      const delta = count - (this.sentByStatus.get(status) ?? 0);
      if (delta <= 0) continue;
      requests += delta;
      line(`gunicorn.request.status.${status}`, `${delta}|c`);
    }
    if (requests > 0) line('gunicorn.requests', `${requests}|c`);
    const { buckets, bucketSums } = this.metrics;
    buckets.forEach((count, i) => {
      const delta = count - this.sentBuckets[i];
      if (delta <= 0) return;
      const meanMs = ((bucketSums[i] - this.sentBucketSums[i]) / delta) * 1000;
      line('gunicorn.request.duration', `${Number(meanMs.toFixed(3))}|ms${delta > 1 ? `|@${Number((1 / delta).toPrecision(6))}` : ''}`);
    });
    line('gunicorn.workers', `${this.workerCount()}|g`);
    const logged = this.metrics.logged();
    for (const level of Object.keys(logged) as (keyof LoggedCounts)[]) {
      const delta = logged[level] - this.sentLogged[level];
      if (delta > 0) line(`gunicorn.log.${level}`, `${delta}|c`);
    }
    this.sentByStatus = byStatus;
    this.sentBuckets = [...buckets];
    this.sentBucketSums = [...bucketSums];
    this.sentLogged = logged;
    this.send(lines);
  }

  /** Sends what is left and stops. */
  close(): void {
    clearInterval(this.timer);
    this.flush();
    // After the datagrams already handed to the socket.
    setImmediate(() => this.socket.close());
  }

  /** The requests by status, summed over the methods. */
  private byStatus(): Map<number, number> {
    const sums = new Map<number, number>();
    for (const { status, count } of this.metrics.requests()) sums.set(status, (sums.get(status) ?? 0) + count);
    return sums;
  }

  /** Packs lines into datagrams. */
  private send(lines: string[]): void {
    let packet = '';
    for (const text of lines) {
      if (packet && Buffer.byteLength(packet) + 1 + Buffer.byteLength(text) > MAX_DATAGRAM) {
        this.sendDatagram(packet);
        packet = '';
      }
      packet = packet ? `${packet}\n${text}` : text;
    }
    if (packet) this.sendDatagram(packet);
  }

  private sendDatagram(packet: string): void {
    // Fire and forget, as Gunicorn's: a statsd that is down costs nothing but a debug line.
    this.socket.send(Buffer.from(packet), this.port, this.host, (error) => {
      if (error) this.logger().debug(`statsd: cannot send to ${this.host}:${this.port}: ${error.message}`);
    });
  }
}
