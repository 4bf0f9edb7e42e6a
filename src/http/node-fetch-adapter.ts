/**
 * Serves a Fetch handler on node:http: turns each IncomingMessage into a Request (body streamed, aborted when
 * the client goes away) and writes the handler's Response back with backpressure.
 */
import type http from 'node:http';
import { Readable } from 'node:stream';
import type { AccessEntry, Logger } from '../glogging.ts';
import { readIfReady } from './ready-read.ts';
import type { FetchHandler, RemoteAddress } from './types.ts';

/** What the adapter needs from the worker around it. */
export interface AdapterHooks {
  logger: Logger;
  /** True when responses should close their connection (the worker drains, keep-alive is off, last request). */
  shouldCloseConnection(): boolean;
  /** Called when a request has been fully answered (or abandoned); `entry()` builds its access-log entry. */
  onRequestDone(entry: () => AccessEntry): void;
}

const BODYLESS_METHODS = new Set(['GET', 'HEAD']);
const BODYLESS_STATUSES = new Set([101, 204, 205, 304]);

function headerGetter(read: (name: string) => string | string[] | number | undefined) {
  return {
    get(name: string): string | null {
      const value = read(name.toLowerCase());
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : String(value);
    },
  };
}

function remoteAddressOf(req: http.IncomingMessage): RemoteAddress {
  const { remoteAddress, remotePort } = req.socket;
  return remoteAddress === undefined
    ? { transport: 'unix', hostname: '', port: 0 }
    : { transport: 'tcp', hostname: remoteAddress, port: remotePort ?? 0 };
}

/** Builds the Fetch Request for an incoming node:http request; throws on a malformed target or header. */
export function toRequest(req: http.IncomingMessage, signal: AbortSignal): Request {
  const target = req.url ?? '/';
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(target)
    ? new URL(target)
    : new URL(`http://${req.headers.host ?? 'localhost'}${target.startsWith('/') ? target : `/${target}`}`);
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  const method = req.method ?? 'GET';
  if (BODYLESS_METHODS.has(method)) return new Request(url, { method, headers, signal });
  const body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
  return new Request(url, { method, headers, body, signal, duplex: 'half' } as RequestInit);
}

function waitForDrainOrClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function copyHeaders(response: Response, res: http.ServerResponse): void {
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie?.() ?? [];
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
}

/** Counts the body bytes written for one response, for the access log. */
export interface SentBytes {
  bytes: number;
}

/** Writes a Fetch Response to a node:http response, counting the body bytes into `sent`. */
export async function writeResponse(
  response: Response,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  closeConnection: boolean,
  sent: SentBytes,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  copyHeaders(response, res);
  if (closeConnection) res.setHeader('connection', 'close');
  const body = response.body;
  if (!body || req.method === 'HEAD' || BODYLESS_STATUSES.has(response.status)) {
    await body?.cancel().catch(() => {});
    res.end();
    return;
  }
  const reader = body.getReader();
  try {
    const first = await reader.read();
    if (first.done) {
      res.end();
      return;
    }
    // A body complete in one chunk gets a Content-Length instead of chunked encoding; one still being produced
    // (SSE) has its first chunk sent at once.
    let pending: Uint8Array | undefined = first.value;
    if (!res.hasHeader('content-length')) {
      const next = reader.read();
      const ready = await readIfReady(next);
      if (ready?.done) {
        res.setHeader('content-length', first.value.byteLength);
        sent.bytes = first.value.byteLength;
        res.end(first.value);
        return;
      }
      res.write(first.value);
      sent.bytes += first.value.byteLength;
      const second = ready ?? await next;
      pending = second.done ? undefined : second.value;
    }
    while (pending) {
      if (res.destroyed) break;
      sent.bytes += pending.byteLength;
      if (!res.write(pending)) await waitForDrainOrClose(res);
      const next = await reader.read();
      pending = next.done ? undefined : next.value;
    }
    if (res.destroyed) await reader.cancel().catch(() => {});
    else res.end();
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  }
}

/** Accepts any Fetch Response, also one made by another copy of the Response class (e.g. undici's). */
function isResponse(value: unknown): value is Response {
  const candidate = value as Response | null;
  return typeof candidate?.status === 'number' && typeof candidate.headers?.get === 'function' && 'body' in candidate;
}

function errorResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

/** Wraps a Fetch handler as a node:http request listener. */
export function createRequestListener(handler: FetchHandler, hooks: AdapterHooks): http.RequestListener {
  const { logger } = hooks;
  return (req, res) => {
    const startedAt = performance.now();
    const sent: SentBytes = { bytes: 0 };
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) controller.abort();
      const finishedAt = performance.now();
      // Built only when the access log asks for it: most deployments run with it off.
      hooks.onRequestDone(() => ({
        remoteAddr: req.socket.remoteAddress ?? '',
        method: req.method ?? '',
        rawUri: req.url ?? '',
        protocol: `HTTP/${req.httpVersion}`,
        status: res.statusCode,
        bytesSent: sent.bytes,
        requestHeaders: headerGetter((name) => req.headers[name]),
        responseHeaders: headerGetter((name) => res.getHeader(name)),
        start: new Date(performance.timeOrigin + startedAt),
        durationMicros: Math.round((finishedAt - startedAt) * 1000),
        pid: process.pid,
      }));
    });
    const respond = async () => {
      let request: Request;
      try {
        request = toRequest(req, controller.signal);
      } catch (error) {
        logger.warning(`Invalid request from ip=${req.socket.remoteAddress ?? '-'}: ${(error as Error).message}`);
        return errorResponse(400, 'Bad Request');
      }
      try {
        const response = await handler(request, { remoteAddr: remoteAddressOf(req) });
        if (!isResponse(response)) {
          throw new TypeError(`the app's fetch handler returned ${Object.prototype.toString.call(response)}, not a Response`);
        }
        return response;
      } catch (error) {
        logger.exception(`Error handling request ${req.method} ${req.url}`, error);
        return errorResponse(500, 'Internal Server Error');
      }
    };
    respond()
      .then((response) => writeResponse(response, req, res, hooks.shouldCloseConnection(), sent))
      .catch((error) => {
        if (!controller.signal.aborted) logger.exception(`Error writing response to ${req.method} ${req.url}`, error);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end();
        } else {
          res.destroy();
        }
      });
  };
}
