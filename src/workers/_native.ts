/**
 * What the native-server engines (Deno.serve, Bun.serve) share: the runtime's server calls a Fetch handler
 * itself, so the worker's bookkeeping wraps the app's handler instead of a node:http listener.
 */
import { type AccessEntry, ENTRY_PID, ENTRY_TIME_ORIGIN, invalidRequestLine } from '../glogging.ts';
import { errorResponse, isResponse, notAResponse, reasonPhrase } from '../http/app-response.ts';
import { changesUrl, ForwardedHeaderError, forwardedUrl, ForwardingPolicy } from '../http/forwarded.ts';
import { MalformedBodyError } from '../http/head-policy.ts';
import {
  BodyTooLargeError, fetchRequestViolation, forEachHeader, lastContentLength, limitedBody, mergedField, type RequestFieldVisitor, requestLimitsOf,
} from '../http/limits.ts';
import { requestDeadlinesOf, timeoutResponse } from '../http/request-deadlines.ts';
import type { RequestHead } from '../http/h1/request-parser.ts';
import { pathStartOf } from '../http/request-target.ts';
import type { ServeInfo } from '../http/types.ts';
import { durationsOf } from '../settings.ts';
import type { EngineContext } from './base.ts';
import { type NativeResponseRules, responseCorrection, withEditedHeaders } from './_native-response.ts';
import { isUpgraded, UPGRADE_ANSWER, UPGRADED_REQUEST_HEADERS, type UpgradedInfo } from '../websocket/upgrade-offer.ts';

/** Marks a response as the last one on its connection; a response with immutable headers is copied first. */
const withConnectionClose = (response: Response) => withEditedHeaders(response, (headers) => headers.set('connection', 'close'));

const nativeClone = Request.prototype.clone;

/**
 * Gives a request another `url` (and its clones too) as own properties shadowing the runtime's getters: a new
 * Request costs 5-10 µs on Deno, about twice what Deno.serve spends on a whole request. A copy made with
 * `new Request(request)` keeps the URL the server received (README, "Behind a proxy").
 */
function withUrl(request: Request, url: string): void {
  Object.defineProperty(request, 'url', { value: url, configurable: true });
  Object.defineProperty(request, 'clone', {
    value: function clone(this: Request): Request {
      const copy = nativeClone.call(this);
      withUrl(copy, url);
      return copy;
    },
    configurable: true,
  });
}

/**
 * The path and query of a request's absolute URL (`http://host/a?b` → `/a?b`): a native server's URL always has
 * an authority and no fragment. Slicing costs about 0.14 µs where `new URL()` costs 1.5 µs (Bun).
 */
function requestTarget(url: string): string {
  const path = pathStartOf(url);
  return path < 0 ? '/' : url.slice(path);
}

/** What the access log reads of a request. */
type LoggedRequest = Pick<Request, 'method' | 'url' | 'headers'>;

/**
 * The request line as received, from an engine that parses requests itself (bun-listen): the method before Fetch
 * normalizes it, the target as sent, the version. A native server tells none of them.
 */
type ReceivedLine = Pick<RequestHead, 'method' | 'target' | 'minorVersion'>;

/**
 * The access-log entry, minus the duration and the body bytes, read while the request is still open (Deno closes
 * a Request once its response is sent). Built only when the access log is on. Without the line as received, the
 * target comes from the URL and the protocol is HTTP/1.1 (README, "Runtimes and engines").
 */
function accessEntry(request: LoggedRequest, response: Pick<Response, 'status' | 'headers'>, info: ServeInfo, startedAt: number, line: ReceivedLine | undefined): AccessEntry {
  return {
    remoteAddr: info.remoteAddr.hostname,
    method: line ? line.method : request.method,
    rawUri: line ? line.target : requestTarget(request.url),
    protocol: line?.minorVersion === 0 ? 'HTTP/1.0' : 'HTTP/1.1',
    status: response.status,
    bytesSent: 0,
    requestHeaders: request.headers,
    responseHeaders: response.headers,
    startMs: ENTRY_TIME_ORIGIN + startedAt,
    durationMicros: 0,
    pid: ENTRY_PID,
  };
}

/**
 * The entry with its duration, measured now, and the body bytes `done` resolved to where the engine counts them
 * (bun-listen writes the response itself); the native servers tell nothing: then the Content-Length, read only
 * then. Set in place: a copy of the entry per request cost more.
 */
function completedEntry(entry: AccessEntry, startedAt: number, bodyBytes: unknown): AccessEntry {
  entry.durationMicros = Math.round((performance.now() - startedAt) * 1000);
  entry.bytesSent = typeof bodyBytes === 'number' ? bodyBytes : Number(entry.responseHeaders.get('content-length') ?? 0);
  return entry;
}

/**
 * How a native server's requests are read and its responses put right (src/workers/_native-response.ts): what
 * an engine on a native server gives nativeHandler.
 */
export interface NativeServerRules extends NativeResponseRules {
  /** Visits a request's fields as the server received them; by default through `request.headers`. */
  forEachRequestField?: RequestFieldVisitor;
}

/** What the access log records of an upgraded request's answer. */
const SWITCHING_PROTOCOLS: Pick<Response, 'status' | 'headers'> = { status: 101, headers: new Headers() };

/**
 * The app's handler as a native server calls it: counted, over-limit requests and those the head rules can still
 * tell (src/http/head-policy.ts) refused before the app sees them, a trusted proxy's forwarding headers followed
 * (src/http/forwarded.ts: request.url, info.remoteAddr), responses put right where the server gets a rule wrong
 * (`rules`; none where tsgunicorn parses requests and writes responses itself, as bun-listen does: then its own
 * parser has applied the limits and the head rules), failures answered with 500,
 * `Connection: close` when the worker drains or reaches max-requests. A handler that answers at once is answered
 * at once (no promise in between, no closure per request). With the access log or the metrics on, the request is reported done when `done` settles
 * (Deno: the response is sent), with its duration; otherwise as soon as the handler has answered. With --request-timeout on, the app gets
 * a copy of the Request whose signal also aborts when its time is up (the runtime's own signal cannot be aborted
 * by anyone else): the copy is made only then. An engine that parsed the request itself gives its `line` as received,
 * for the access log.
 */
export function nativeHandler(context: EngineContext, rules?: NativeServerRules) {
  const { handler, hooks, logger } = context;
  const correct = rules && responseCorrection(rules, context.settings.serverHeader, logger);
  const checkLimits = rules !== undefined;
  const forEachRequestField = rules?.forEachRequestField ?? forEachHeader;
  const limits = requestLimitsOf(context.settings);
  const limitBody = checkLimits && limits.body > 0;
  const deadlines = requestDeadlinesOf(durationsOf(context.settings).requestTimeoutMs, logger);
  /** A refused request's answer, logged as an invalid request; its connection closes. */
  const refuse = (info: ServeInfo, status: number, reason: string) => {
    logger.warning(invalidRequestLine(info.remoteAddr.hostname, reason));
    return withConnectionClose(errorResponse(status, reasonPhrase(status)));
  };
  const failed = (request: Request, info: ServeInfo, error: unknown) => {
    if (error instanceof BodyTooLargeError || error instanceof MalformedBodyError || error instanceof ForwardedHeaderError) {
      return refuse(info, error.status, error.message);
    }
    logger.exception(`Error handling request ${request.method} ${request.url}`, error);
    return errorResponse(500, 'Internal Server Error');
  };
  const serveUpgrades = context.websocket !== undefined;
  const answer = (
    request: Request, info: ServeInfo, done: Promise<unknown> | undefined, line: ReceivedLine | undefined, startedAt: number, value: unknown,
  ): Response => {
    if (serveUpgrades && isUpgraded(info)) return upgradedAnswer(request, info, line, startedAt, value);
    let response = isResponse(value) ? value : failed(request, info, notAResponse(value));
    // A 101 from Deno.upgradeWebSocket goes to Deno.serve as it is: its Upgrade and Connection complete the handshake.
    const switching = response.status === 101;
    if (correct && !switching) response = correct(request, response);
    if (!switching && hooks.shouldCloseConnection()) response = withConnectionClose(response);
    return reportDone(request, info, done, line, startedAt, response);
  };
  /**
   * The app upgraded the request with info.upgrade(): whatever it returned is dropped (Bun's server.upgrade asks
   * for no Response), the access log records a 101 at once (Deno's `completed` of an upgraded request does not
   * settle when the 101 is sent), and the server gets the answer the engine's upgrade left.
   */
  const upgradedAnswer = (request: Request, info: ServeInfo, line: ReceivedLine | undefined, startedAt: number, value: unknown) => {
    if (isResponse(value)) value.body?.cancel().catch(() => {});
    const headers = (info as UpgradedInfo)[UPGRADED_REQUEST_HEADERS];
    reportDone(headers ? { method: request.method, url: request.url, headers } : request, info, undefined, line, startedAt, SWITCHING_PROTOCOLS);
    return (info as UpgradedInfo)[UPGRADE_ANSWER] ?? new Response(null);
  };
  const reportDone = <Answer extends Pick<Response, 'status' | 'headers'>>(
    request: LoggedRequest, info: ServeInfo, done: Promise<unknown> | undefined, line: ReceivedLine | undefined, startedAt: number,
    response: Answer,
  ): Answer => {
    if (!hooks.timed) {
      hooks.onRequestDone(undefined, '', 0, 0);
      return response;
    }
    const { method } = request;
    const { status } = response;
    const entry = logger.accessEnabled ? accessEntry(request, response, info, startedAt, line) : undefined;
    const finish = (bodyBytes?: unknown) => hooks.onRequestDone(entry && completedEntry(entry, startedAt, bodyBytes), method, status, startedAt);
    if (done) done.then(finish, finish);
    else finish();
    return response;
  };
  const forwarding = new ForwardingPolicy(context.settings);
  /** The forwarding headers the limits check met in its pass over a request's fields (reading a Deno.serve
   * request's fields again costs about 0.4 µs each). */
  let forwardingFields: Map<string, string> | undefined;
  const spotForwarding = (name: string, value: string) => {
    if (!forwarding.watches(name)) return;
    forwardingFields ??= new Map();
    forwardingFields.set(name, mergedField(forwardingFields.get(name), value));
  };
  return (request: Request, info: ServeInfo, done?: Promise<unknown>, line?: ReceivedLine): Response | Promise<Response> => {
    hooks.onRequestStart();
    const startedAt = hooks.timed ? performance.now() : 0;
    let forwardingHeaders: { get(name: string): string | null | undefined } | undefined;
    let init: RequestInit & { duplex?: 'half' } | undefined;
    if (checkLimits) {
      forwardingFields = undefined;
      const violation = fetchRequestViolation(limits, request, forEachRequestField, spotForwarding);
      forwardingHeaders = forwardingFields;
      if (violation) return answer(request, info, done, line, startedAt, refuse(info, violation.status, violation.reason));
      if (limitBody && request.body && lastContentLength() === undefined) {
        init = { body: limitedBody(request.body, limits.body), duplex: 'half' };
      }
    } else if (forwarding.inHeaders(request.headers)) {
      forwardingHeaders = request.headers;
    }
    let timeout: AbortController | undefined;
    if (deadlines) {
      timeout = new AbortController();
      (init ??= {}).signal = AbortSignal.any([request.signal, timeout.signal]);
    }
    const appRequest = init ? new Request(request, init) : request;
    let result: Response | Promise<Response>;
    try {
      if (forwardingHeaders && forwarding.trusts(info.remoteAddr)) {
        const fields = forwardingHeaders;
        const forwarded = forwarding.read((name) => fields.get(name) ?? null);
        if (changesUrl(forwarded)) withUrl(appRequest, forwardedUrl(request.url, forwarded));
        // Inheriting from the engine's info keeps what it has besides the address (upgrade(), Deno's completed).
        if (forwarded.client) info = Object.create(info, { remoteAddr: { value: forwarded.client, enumerable: true } }) as ServeInfo;
      }
      result = handler(appRequest, info);
    } catch (error) {
      return answer(request, info, done, line, startedAt, failed(request, info, error));
    }
    if (typeof (result as Promise<Response> | null)?.then !== 'function') return answer(request, info, done, line, startedAt, result);
    if (deadlines) {
      result = deadlines.within(result as Promise<Response>, request.method, request.url, (reason) => {
        timeout!.abort(reason);
        return withConnectionClose(timeoutResponse());
      });
    }
    return (result as Promise<Response>).then(
      (value) => answer(request, info, done, line, startedAt, value),
      (error: unknown) => answer(request, info, done, line, startedAt, failed(request, info, error)),
    );
  };
}
