/**
 * Serves a Fetch handler as a node:http request listener: gives the handler a lazy Request, writes its Response
 * back, aborts the request's signal when the client goes away, and reports each finished request to the worker.
 */
import type http from 'node:http';
import type { AccessEntry, Logger } from '../../glogging.ts';
import { errorResponse, isResponse, notAResponse } from '../app-response.ts';
import type { FetchHandler, RemoteAddress, ServeInfo } from '../types.ts';
import { MalformedRequestError, NodeRequest } from './request.ts';
import { type SentResponse, sendResponse } from './response.ts';

/** What the adapter needs from the worker around it. */
export interface AdapterHooks {
  logger: Logger;
  /** True when responses should close their connection (the worker drains, keep-alive is off, last request). */
  shouldCloseConnection(): boolean;
  /** Called when a request has been fully answered (or abandoned); `entry()` builds its access-log entry. */
  onRequestDone(entry: () => AccessEntry): void;
}

function headerGetter(read: (name: string) => string | string[] | number | undefined) {
  return {
    get(name: string): string | null {
      const value = read(name.toLowerCase());
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : String(value);
    },
  };
}

/** The handler's second argument; the client's address is looked up only if the handler asks. */
function serveInfoFor(socket: http.IncomingMessage['socket']): ServeInfo {
  return {
    get remoteAddr(): RemoteAddress {
      const { remoteAddress, remotePort } = socket;
      return remoteAddress === undefined
        ? { transport: 'unix', hostname: '', port: 0 }
        : { transport: 'tcp', hostname: remoteAddress, port: remotePort ?? 0 };
    },
  };
}

/** Wraps a Fetch handler as a node:http request listener. */
export function createRequestListener(handler: FetchHandler, hooks: AdapterHooks): http.RequestListener {
  const { logger } = hooks;
  return (incoming, res) => {
    const startedAt = performance.now();
    const sent: SentResponse = { bytes: 0 };
    const request = new NodeRequest(incoming);
    res.once('close', () => {
      if (!res.writableFinished) NodeRequest.clientGone(request);
      const finishedAt = performance.now();
      // Built only when the access log asks for it: most deployments run with it off.
      hooks.onRequestDone(() => ({
        remoteAddr: incoming.socket.remoteAddress ?? '',
        method: incoming.method ?? '',
        rawUri: incoming.url ?? '',
        protocol: `HTTP/${incoming.httpVersion}`,
        status: res.statusCode,
        bytesSent: sent.bytes,
        requestHeaders: headerGetter((name) => incoming.headers[name]),
        responseHeaders: headerGetter((name) => res.getHeader(name) ?? sent.headers?.[name]),
        start: new Date(performance.timeOrigin + startedAt),
        durationMicros: Math.round((finishedAt - startedAt) * 1000),
        pid: process.pid,
      }));
    });

    const failed = (error: unknown): Response => {
      if (error instanceof MalformedRequestError) {
        logger.warning(`Invalid request from ip=${incoming.socket.remoteAddress ?? '-'}: ${error.message}`);
        return errorResponse(400, 'Bad Request');
      }
      logger.exception(`Error handling request ${incoming.method} ${incoming.url}`, error);
      return errorResponse(500, 'Internal Server Error');
    };
    const writeFailed = (error: unknown) => {
      if (res.writableFinished || res.destroyed) return;
      logger.exception(`Error writing response to ${incoming.method} ${incoming.url}`, error);
      if (res.headersSent) {
        res.destroy();
      } else {
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        if (hooks.shouldCloseConnection()) res.setHeader('connection', 'close');
        res.statusCode = 500;
        res.statusMessage = '';
        res.end();
      }
    };
    const send = (value: unknown) => {
      const response = isResponse(value)
        ? value
        : failed(notAResponse(value));
      try {
        sendResponse(response, incoming, res, hooks.shouldCloseConnection(), sent)?.catch(writeFailed);
      } catch (error) {
        writeFailed(error);
      }
    };

    let result: Response | Promise<Response>;
    try {
      result = handler(NodeRequest.forHandler(request), serveInfoFor(incoming.socket));
    } catch (error) {
      send(failed(error));
      return;
    }
    if (typeof (result as Promise<Response> | null)?.then === 'function') {
      (result as Promise<Response>).then(send, (error: unknown) => send(failed(error)));
    } else {
      send(result);
    }
  };
}
