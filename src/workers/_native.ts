/**
 * What the native-server engines (Deno.serve, Bun.serve) share: the runtime's server calls a Fetch handler
 * itself, so the worker's bookkeeping wraps the app's handler instead of a node:http listener.
 */
import type { AccessEntry } from '../glogging.ts';
import { callApp } from '../http/call-app.ts';
import type { ServeInfo } from '../http/types.ts';
import type { EngineContext } from './base.ts';

/** Marks a response as the last one on its connection; a response with immutable headers is copied first. */
function withConnectionClose(response: Response): Response {
  try {
    response.headers.set('connection', 'close');
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set('connection', 'close');
    return copy;
  }
}

/**
 * The access-log entry, minus the duration, read while the request is still open (Deno closes a Request once
 * its response is sent). Built only when the access log is on.
 */
function accessEntry(request: Request, response: Response, info: ServeInfo, startedAt: number): AccessEntry {
  const url = new URL(request.url);
  return {
    remoteAddr: info.remoteAddr.hostname,
    method: request.method,
    rawUri: url.pathname + url.search,
    protocol: 'HTTP/1.1',
    status: response.status,
    bytesSent: Number(response.headers.get('content-length') ?? 0),
    requestHeaders: request.headers,
    responseHeaders: response.headers,
    start: new Date(performance.timeOrigin + startedAt),
    durationMicros: 0,
    pid: process.pid,
  };
}

/**
 * The app's handler as a native server calls it: counted, failures answered with 500, `Connection: close` when
 * the worker drains or reaches max-requests, reported done when `done` settles (Deno: the response is sent;
 * elsewhere: once the handler has answered).
 */
export function nativeHandler(context: EngineContext) {
  const { handler, hooks, logger } = context;
  return async (request: Request, info: ServeInfo, done?: Promise<unknown>): Promise<Response> => {
    const startedAt = performance.now();
    hooks.onRequestStart();
    let response = await callApp(handler, request, info, logger);
    if (hooks.shouldCloseConnection()) response = withConnectionClose(response);
    const entry = logger.accessEnabled ? accessEntry(request, response, info, startedAt) : undefined;
    const finish = () => hooks.onRequestDone(() => ({
      ...entry!,
      durationMicros: Math.round((performance.now() - startedAt) * 1000),
    }));
    if (done) done.then(finish, finish);
    else finish();
    return response;
  };
}
