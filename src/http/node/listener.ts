/**
 * Serves a Fetch handler as a node:http request listener: gives the handler a lazy Request, writes its Response
 * back, aborts the request's signal when the client goes away, and reports each request's start and end to the
 * worker. Per request it adds one `close` listener and reads no clock unless the access log or the metrics are on.
 */
import type { X509Certificate } from 'node:crypto';
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type AccessEntry, ENTRY_PID, ENTRY_TIME_ORIGIN, invalidRequestLine, type Logger } from '../../glogging.ts';
import { clientCertificateOf } from '../client-certificate.ts';
import { errorResponse, isResponse, notAResponse, reasonPhrase } from '../app-response.ts';
import { ForwardedHeaderError, type ForwardingPolicy } from '../forwarded.ts';
import { MalformedBodyError, headPolicyViolation, type PolicyViolation } from '../head-policy.ts';
import { BodyTooLargeError, rawHeadViolation, type RequestLimits } from '../limits.ts';
import { InvalidResponseFieldError } from '../response-policy.ts';
import { type RequestDeadlines, timeoutResponse } from '../request-deadlines.ts';
import type { FetchHandler, RemoteAddress, ServeInfo } from '../types.ts';
import { MalformedRequestError, NodeRequest } from './request.ts';
import { refusingOn } from './socket-refusals.ts';
import { type SentResponse, sendResponse } from './response.ts';
import type { NodeUpgrades } from '../../websocket/node-upgrade.ts';
import type { UpgradableInfo } from '../../websocket/app-handler.ts';
import { notUpgradable, upgradableInfo, UpgradeOffer } from '../../websocket/upgrade-offer.ts';

/** What the adapter needs from the worker around it. */
export interface AdapterHooks {
  logger: Logger;
  /** True when responses should close their connection (the worker drains, keep-alive is off, last request). */
  shouldCloseConnection(): boolean;
  /** Called when a request has arrived, before the handler runs. */
  onRequestStart(incoming: http.IncomingMessage): void;
  /** Whether each request's start time is read (performance.now()): the access log or the metrics want it. */
  timed: boolean;
  /**
   * Called once the request's response has closed (sent, or abandoned), with its status and start time (0 unless
   * `timed`), and its access-log entry with the access log on.
   */
  onRequestDone(entry: AccessEntry | undefined, incoming: http.IncomingMessage, status: number, startedAt: number): void;
}

/** A field's value as Fetch's Headers.get gives it: repeated values joined, absent as null. */
function fieldValue(value: string | string[] | number | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** Reads a request's fields by name, case-insensitively (node:http builds `headers` on the first read). */
class RequestFields {
  readonly #incoming: http.IncomingMessage;
  constructor(incoming: http.IncomingMessage) {
    this.#incoming = incoming;
  }
  get(name: string): string | null {
    return fieldValue(this.#incoming.headers[name.toLowerCase()]);
  }
}

/** Reads a response's fields by name, case-insensitively: those set on it, else those it wrote with writeHead(). */
class ResponseFields {
  readonly #res: http.ServerResponse;
  readonly #sent: SentResponse;
  constructor(res: http.ServerResponse, sent: SentResponse) {
    this.#res = res;
    this.#sent = sent;
  }
  get(name: string): string | null {
    const key = name.toLowerCase();
    return fieldValue(this.#res.getHeader(key) ?? this.#sent.headers?.[key]);
  }
}

/** The access log's protocol of a request, e.g. `HTTP/1.1` (a constant for the usual versions, no string built). */
function protocolOf(version: string): string {
  return version === '1.1' ? 'HTTP/1.1' : version === '2.0' ? 'HTTP/2.0' : `HTTP/${version}`;
}

/** The peer's address as a socket reports it (a unix socket has none). */
function peerOf(socket: http.IncomingMessage['socket']): RemoteAddress {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress === undefined
    ? { transport: 'unix', hostname: '', port: 0 }
    : { transport: 'tcp', hostname: remoteAddress, port: remotePort ?? 0 };
}

/**
 * The handler's second argument: the client's address (`forwarded`, else looked up only if the handler asks) and,
 * on a TLS connection, its client certificate (read only if asked). Own properties, so that `{ ...info }` keeps
 * them.
 */
function serveInfoFor(socket: http.IncomingMessage['socket'], forwarded?: RemoteAddress): ServeInfo {
  if (!(socket as TLSSocket).encrypted) {
    return forwarded ? { remoteAddr: forwarded } : {
      get remoteAddr(): RemoteAddress {
        return peerOf(socket);
      },
    };
  }
  return {
    get remoteAddr(): RemoteAddress {
      return forwarded ?? peerOf(socket);
    },
    get clientCertificate(): X509Certificate | null {
      return clientCertificateOf(socket as TLSSocket);
    },
  };
}

/** One request being answered: what the handler's answer, the writing and the end of the response share. */
class Exchange {
  readonly incoming: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly hooks: AdapterHooks;
  readonly request: NodeRequest;
  readonly sent: SentResponse = { bytes: 0 };
  /** performance.now() at the start, with `hooks.timed` only. */
  readonly startedAt: number;
  /** `--server-header`. */
  readonly serverHeader: string | null;
  /** The request was refused (a limit, malformed) or timed out: its response closes the connection. */
  refused = false;
  /** The client's address from a trusted X-Forwarded-For, for the access log. */
  forwardedClient?: string;
  /** An Upgrade request's offer to the app (when it serves WebSockets), and who completes it. */
  upgrade?: { offer: UpgradeOffer; upgrades: NodeUpgrades };

  constructor(
    incoming: http.IncomingMessage, res: http.ServerResponse, hooks: AdapterHooks, bodyLimit: number, awaitsContinue: boolean,
    serverHeader: string | null,
  ) {
    this.incoming = incoming;
    this.res = res;
    this.hooks = hooks;
    this.serverHeader = serverHeader;
    this.request = new NodeRequest(incoming, bodyLimit, awaitsContinue ? res : undefined);
    this.startedAt = hooks.timed ? performance.now() : 0;
  }

  /** The response has closed: sent in full, or cut (then the request's signal aborts). */
  closed(): void {
    const { incoming, res, hooks, startedAt } = this;
    if (!res.writableFinished) NodeRequest.abort(this.request);
    // Built only with the access log on: most deployments run with it off.
    hooks.onRequestDone(hooks.logger.accessEnabled ? this.accessEntry() : undefined, incoming, res.statusCode, startedAt);
  }

  /** The access-log entry of the request whose response has just closed. */
  private accessEntry(): AccessEntry {
    const { incoming, res, sent, startedAt } = this;
    const finishedAt = startedAt && performance.now();
    return {
      remoteAddr: this.forwardedClient ?? incoming.socket.remoteAddress ?? '',
      method: incoming.method ?? '',
      rawUri: incoming.url ?? '',
      protocol: protocolOf(incoming.httpVersion),
      status: res.statusCode,
      bytesSent: sent.bytes,
      requestHeaders: new RequestFields(incoming),
      responseHeaders: new ResponseFields(res, sent),
      startMs: ENTRY_TIME_ORIGIN + startedAt,
      durationMicros: Math.round((finishedAt - startedAt) * 1000),
      pid: ENTRY_PID,
    };
  }

  /** Refuses the request with `status` (logged as an invalid request); the connection closes after it. */
  refuse(status: number, reason: string): Response {
    this.refused = true;
    // The socket is gone (null) when the refusal comes after the client left, e.g. in the middle of a body.
    if (this.incoming.socket) refusingOn(this.incoming.socket);
    this.hooks.logger.warning(invalidRequestLine(this.incoming.socket?.remoteAddress, reason));
    return errorResponse(status, reasonPhrase(status));
  }

  /**
   * What the client gets when the handler failed: 400 for a malformed request or forbidden trailers, 413 past the
   * body limit, else 500.
   */
  failed(error: unknown): Response {
    const { incoming, hooks } = this;
    if (error instanceof MalformedRequestError) return this.refuse(400, error.message);
    if (error instanceof BodyTooLargeError || error instanceof MalformedBodyError ||
      error instanceof ForwardedHeaderError) return this.refuse(error.status, error.message);
    // The connection went before the body ended (a malformed body, answered and logged by the clientError
    // listener, or the client left): the handler failing to read the body is no app error.
    if (!incoming.complete && (incoming.socket?.destroyed ?? true)) {
      hooks.logger.debug(`Request ${incoming.method} ${incoming.url} abandoned: ${(error as Error)?.message}`);
      return errorResponse(500, 'Internal Server Error');
    }
    hooks.logger.exception(`Error handling request ${incoming.method} ${incoming.url}`, error);
    return errorResponse(500, 'Internal Server Error');
  }

  /** The handler's info for an Upgrade request, with upgrade() (see src/websocket/node-upgrade.ts). */
  offerUpgrade(upgrades: NodeUpgrades, info: ServeInfo): ServeInfo {
    const { incoming } = this;
    const fields = new RequestFields(incoming);
    const offer = new UpgradeOffer({ method: incoming.method ?? '', field: (name) => fields.get(name) });
    this.upgrade = { offer, upgrades };
    return upgradableInfo(info, (upgraded, options) => offer.accept(upgraded, options));
  }

  /** The app upgraded the request: what it returned is dropped (as Bun's server.upgrade asks), the 101 goes out. */
  switchProtocols(value: unknown, offer: UpgradeOffer, upgrades: NodeUpgrades): void {
    if (isResponse(value)) value.body?.cancel().catch(() => {});
    upgrades.start(this.incoming, this.res, offer);
    this.closed();
  }

  /** Writes the handler's answer (a 500 if it is not a Response). */
  send(value: unknown): void {
    if (this.upgrade?.offer.key !== undefined) return this.switchProtocols(value, this.upgrade.offer, this.upgrade.upgrades);
    const response = isResponse(value) ? value : this.failed(notAResponse(value));
    try {
      sendResponse(response, this.incoming, this.res, this.refused || this.hooks.shouldCloseConnection(), this.serverHeader, this.sent)
        ?.catch((error: unknown) => this.writeFailed(error));
    } catch (error) {
      if (error instanceof InvalidResponseFieldError) {
        // Nothing has been written: the client gets a 500, never the field.
        this.hooks.logger.error(`Error handling request ${this.incoming.method} ${this.incoming.url}: ${error.message}`);
        response.body?.cancel().catch(() => {});
        this.send(errorResponse(500, 'Internal Server Error'));
      } else {
        this.writeFailed(error);
      }
    }
  }

  /** Writing the response failed: a 500 if nothing was sent yet, else the connection is cut. */
  writeFailed(error: unknown): void {
    const { incoming, res, hooks } = this;
    if (res.writableFinished || res.destroyed) return;
    hooks.logger.exception(`Error writing response to ${incoming.method} ${incoming.url}`, error);
    if (res.headersSent) {
      res.destroy();
    } else {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      if (hooks.shouldCloseConnection()) res.setHeader('connection', 'close');
      res.statusCode = 500;
      res.statusMessage = '';
      res.end();
    }
  }
}

/** How the adapter answers. */
export interface AdapterOptions {
  /**
   * Write an answer the handler gave at once from a microtask, after node:http's parser has returned, instead
   * of from inside the parser's callback (cheaper on Deno, see Runtime.nodeHttpAnswersAfterParse).
   */
  answerAfterParse?: boolean;
  /** Gunicorn's request limits, checked before the handler runs (node:http's parser has none of them); the head
   * rules of src/http/head-policy.ts are checked whatever the limits. */
  limits?: RequestLimits;
  /** Forwarding headers to follow from trusted peers (--forwarded-allow-ips); none when absent. */
  forwarding?: ForwardingPolicy;
  /** `--server-header`: sent as `Server` unless the app set one (none by default). */
  serverHeader?: string | null;
  /** --request-timeout, when on. */
  deadlines?: RequestDeadlines;
  /** WebSocket upgrades, when the app exports a `websocket` handler: Upgrade requests' info gets upgrade(). */
  upgrades?: NodeUpgrades;
  /** The head rules of the requests' protocol: HTTP/1.1's (src/http/head-policy.ts) unless given. */
  headRules?: HeadRules;
}

/** The head rules of a protocol: checks a request's head (method, target, fields) beyond the limits. */
export type HeadRules = (incoming: http.IncomingMessage, method: string, target: string) => PolicyViolation | undefined;

/** HTTP/1.1's head rules. */
const http1HeadRules: HeadRules = (incoming, method, target) =>
  headPolicyViolation(method, target, incoming.httpVersionMajor, incoming.httpVersionMinor, incoming.rawHeaders);

/**
 * The handler's second argument, after following a trusted peer's forwarding headers (which may set the
 * request's URL); throws a ForwardedHeaderError for headers that cannot be followed.
 */
function forwardedInfo(exchange: Exchange, forwarding: ForwardingPolicy): ServeInfo {
  const { incoming, request } = exchange;
  const socket = incoming.socket;
  if (!forwarding.inRawHeaders(incoming.rawHeaders) || !forwarding.trusts(peerOf(socket))) return serveInfoFor(socket);
  const forwarded = forwarding.read((name) => {
    const value = incoming.headers[name];
    return value === undefined ? null : String(value);
  });
  NodeRequest.forward(request, forwarded);
  if (!forwarded.client) return serveInfoFor(socket);
  exchange.forwardedClient = forwarded.client.hostname;
  return serveInfoFor(socket, forwarded.client);
}

/**
 * A node:http request listener; `awaitsContinue`: the client sent `Expect: 100-continue` and waits for
 * `100 Continue` before it sends the body (the 'checkContinue' event).
 */
export type FetchRequestListener = (incoming: http.IncomingMessage, res: http.ServerResponse, awaitsContinue?: boolean) => void;

/**
 * Wraps a Fetch handler as a node:http request listener. For 'checkContinue' call it with `awaitsContinue`: the
 * Request then sends `100 Continue` when the handler first reads the body, so a handler can refuse without it.
 */
export function createRequestListener(handler: FetchHandler, hooks: AdapterHooks, options: AdapterOptions = {}): FetchRequestListener {
  const { answerAfterParse = false, limits, forwarding, serverHeader = null, deadlines, upgrades, headRules = http1HeadRules } = options;
  return (incoming, res, awaitsContinue = false) => {
    hooks.onRequestStart(incoming);
    const exchange = new Exchange(incoming, res, hooks, limits?.body ?? 0, awaitsContinue, serverHeader);
    res.on('close', () => exchange.closed());
    const method = incoming.method ?? '';
    const target = incoming.url ?? '';
    // The limits first, as Gunicorn checks them while it reads the head.
    const violation = (limits && rawHeadViolation(limits, method, target, incoming.rawHeaders))
      || headRules(incoming, method, target);
    if (violation) {
      exchange.send(exchange.refuse(violation.status, violation.reason));
      return;
    }
    let result: Response | Promise<Response>;
    try {
      let info = forwarding ? forwardedInfo(exchange, forwarding) : serveInfoFor(incoming.socket);
      // node:http marks the requests it hands to the 'upgrade' event (`upgrade` is missing from its typings); the
      // others' info answers upgrade() with false, as on every engine.
      if (upgrades) {
        if ((incoming as { upgrade?: boolean }).upgrade) info = exchange.offerUpgrade(upgrades, info);
        else (info as UpgradableInfo).upgrade = notUpgradable;
      }
      result = handler(NodeRequest.forHandler(exchange.request), info);
    } catch (error) {
      exchange.send(exchange.failed(error));
      return;
    }
    if (typeof (result as Promise<Response> | null)?.then === 'function') {
      if (deadlines) {
        result = deadlines.within(result as Promise<Response>, method, target, (reason) => {
          exchange.refused = true;
          NodeRequest.abort(exchange.request, reason);
          return timeoutResponse();
        });
      }
      (result as Promise<Response>).then(
        (value) => exchange.send(value),
        (error: unknown) => exchange.send(exchange.failed(error)),
      );
    } else if (answerAfterParse) {
      queueMicrotask(() => exchange.send(result));
    } else {
      exchange.send(result);
    }
  };
}
