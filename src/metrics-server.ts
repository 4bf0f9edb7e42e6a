/**
 * --metrics-bind: a small HTTP server in the master (node:http, which all three runtimes have) for monitoring and
 * probes: /metrics (Prometheus), /healthz (200 whenever the master's event loop answers: proof of life), /readyz
 * (200 while a worker is ready and the server is not stopping, else 503). Anything else gets 404.
 */
import http from 'node:http';
import { parseAddress } from './address.ts';
import type { Logger } from './glogging.ts';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.ts';
import { METRICS_DEFAULT_PORT } from './settings.ts';

/** What the server asks the master. */
export interface MetricsSource {
  /** The Prometheus text of this moment. */
  metricsText(): string;
  /** Whether the server takes requests: a worker is ready and it does not stop (nor is about to). */
  ready(): boolean;
}

/** How often a new master of a binary upgrade tries the address its old master still holds. */
const RETRY_MS = 1000;

/** The master's metrics and health endpoint. */
export class MetricsServer {
  private readonly server: http.Server;
  private readonly bind: string;
  private readonly logger: () => Logger;
  private retry?: ReturnType<typeof setTimeout>;

  /** `logger` is read at each use: a HUP replaces the master's logger. */
  constructor(bind: string, source: MetricsSource, logger: () => Logger) {
    this.bind = bind;
    this.logger = logger;
    this.server = http.createServer((request, response) => answer(source, request, response));
    // Scrapes and probes come a few times a minute: a quiet connection need not be kept long.
    this.server.keepAliveTimeout = 5000;
  }

  /**
   * Listens; rejects when it cannot (the address is taken, say). With `waitForAddress` (a new master of a binary
   * upgrade, whose old master serves the address until it exits) it retries every second instead.
   */
  async listen(waitForAddress: boolean): Promise<void> {
    try {
      await this.listenOnce();
    } catch (error) {
      if (!waitForAddress) throw error;
      this.logger().info(`Metrics: ${this.bind} is taken (${(error as Error).message}); trying again every second`);
      this.retryLater();
    }
  }

  private listenOnce(): Promise<void> {
    const address = parseAddress(this.bind, '--metrics-bind', METRICS_DEFAULT_PORT);
    return new Promise((resolve, reject) => {
      // Listeners of this attempt only: a listen() callback would stay behind a failed attempt and fire later.
      const onError = (error: Error) => {
        this.server.off('listening', onListening);
        reject(error);
      };
      const onListening = () => {
        this.server.off('error', onError);
        this.logger().info(`Metrics at: ${this.url()} (/metrics, /healthz, /readyz)`);
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      if (address.kind === 'tcp') this.server.listen(address.port, address.host);
      else if (address.kind === 'unix') this.server.listen(address.path);
      else onError(new Error('an fd:// address cannot serve metrics'));
    });
  }

  private retryLater(): void {
    this.retry = setTimeout(() => this.listenOnce().catch(() => this.retryLater()), RETRY_MS);
    this.retry.unref?.();
  }

  /** Where it listens: `http://HOST:PORT` or `unix:PATH`. */
  private url(): string {
    const address = this.server.address();
    if (typeof address === 'string' || address === null) return `unix:${address ?? this.bind}`;
    const host = address.address.includes(':') ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** Stops listening and closes its connections. */
  close(): void {
    clearTimeout(this.retry);
    this.server.close();
    this.server.closeAllConnections();
  }
}

function answer(source: MetricsSource, request: http.IncomingMessage, response: http.ServerResponse): void {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(response, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
  } else if (path === '/metrics') {
    send(response, 200, source.metricsText(), { 'content-type': PROMETHEUS_CONTENT_TYPE });
  } else if (path === '/healthz') {
    send(response, 200, 'ok\n');
  } else if (path === '/readyz') {
    if (source.ready()) send(response, 200, 'ready\n');
    else send(response, 503, 'not ready\n');
  } else {
    send(response, 404, 'not found\n');
  }
}

function send(response: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers, 'content-length': Buffer.byteLength(body) });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
