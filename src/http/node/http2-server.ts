/**
 * The HTTP/2 side of the node:http engine: a node:http2 server that never listens, served the connections handed
 * to it (the h2c gate's, with emit('connection'), which node:http2 takes on Node, Deno and Bun alike). Its streams
 * reach the same Fetch adapter as HTTP/1.1 requests, through the compatibility request and response of
 * http2-messages.ts and with the HTTP/2 head rules; the worker's connection tracker counts its connections and
 * streams as it counts HTTP/1.1 ones (the cap, the timeouts, the drain). A drain sends GOAWAY on every session
 * (`session.close()`): the client opens no new stream there, the open ones finish, then the session closes its
 * connection; an engine closes an idle HTTP/2 connection the same way (goAway()).
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from '../../glogging.ts';
import type { RequestLimits } from '../limits.ts';
import type { Settings } from '../../settings.ts';
import type { FetchHandler } from '../types.ts';
import { http2HeadViolation } from '../http2-head-policy.ts';
import { bindSessionSocket, FetchHttp2Request, FetchHttp2Response } from './http2-messages.ts';
import { type AdapterHooks, type AdapterOptions, createRequestListener, type FetchRequestListener } from './listener.ts';

/** node:http2's largest header list size: what `--http2-max-header-list-size 0` (no limit of its own) stands for. */
const UNLIMITED_HEADER_LIST = 2 ** 32 - 1;
/** node:http2's default maxHeaderListPairs. */
const DEFAULT_HEADER_PAIRS = 128;
/** The pseudo-headers of a request (:method, :scheme, :authority, :path), which node:http2 counts among its fields. */
const PSEUDO_HEADERS = 4;

/** The HTTP/2 settings the server announces, from the `--http2-*` settings. */
export function http2OptionsOf(settings: Settings, limits: RequestLimits): http2.ServerOptions {
  return {
    settings: {
      maxConcurrentStreams: settings.http2MaxConcurrentStreams,
      initialWindowSize: settings.http2InitialWindowSize,
      maxFrameSize: settings.http2MaxFrameSize,
      maxHeaderListSize: settings.http2MaxHeaderListSize || UNLIMITED_HEADER_LIST,
    },
    // node:http2 resets a stream with more fields than this (ENHANCE_YOUR_CALM) before the adapter sees it: up to
    // twice --limit-request-fields (at least node:http2's default), the adapter answers 431 with the
    // invalid-request line, as for HTTP/1.1.
    maxHeaderListPairs: Math.max(DEFAULT_HEADER_PAIRS, 2 * limits.fields + PSEUDO_HEADERS),
  };
}

/** The worker's HTTP/2 server and its sessions. */
export class Http2Connections {
  /** Never listening: only its connection listener (node:http2's) is of use. */
  private readonly server: net.Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** The connection being handed to the server: its session is made at once, during emit('connection'). */
  private arriving?: Socket;
  /** The session of each connection. */
  private readonly sessionOf = new WeakMap<object, http2.ServerHttp2Session>();
  private draining = false;

  constructor(listener: FetchRequestListener, options: http2.ServerOptions, logger: Logger) {
    // The compatibility request and response stand in for node:http's (http2-messages.ts).
    const streamListener = listener as unknown as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse, awaitsContinue?: boolean) => void;
    const server = http2.createServer({
      ...options,
      Http2ServerRequest: FetchHttp2Request,
      Http2ServerResponse: FetchHttp2Response,
    }, streamListener);
    // As on the HTTP/1.1 server (src/workers/node-http.ts): `100 Continue` on the body's first read, and 417 for any
    // other expectation from the head rules, logged (node:http2 would answer both by itself).
    server.on('checkContinue', (request, response) => streamListener(request, response, true));
    server.on('checkExpectation', streamListener);
    server.on('session', (session: http2.ServerHttp2Session) => {
      if (this.arriving) {
        bindSessionSocket(session, this.arriving);
        this.sessionOf.set(this.arriving, session);
      }
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (this.draining) session.close();
    });
    // A client's protocol error ends its session (GOAWAY) or stream (RST_STREAM); nothing for the app to know.
    server.on('sessionError', (error: Error) => logger.debug(`HTTP/2 session error: ${error.message}`));
    this.server = server;
  }

  /** Serves a connection whose client speaks HTTP/2 (its first bytes are back in its read buffer). */
  serve(socket: Socket): void {
    this.arriving = socket;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.arriving = undefined;
    }
  }

  /**
   * Closes an HTTP/2 connection with GOAWAY (RFC 9113 section 6.8: its open streams finish, then the session closes
   * it) and returns true; false when `socket` is no HTTP/2 connection or has had its GOAWAY already (the caller then
   * cuts it: its client has not closed after it).
   */
  goAway(socket: object): boolean {
    const session = this.sessionOf.get(socket);
    if (!session || session.closed) return false;
    session.close();
    return true;
  }

  /** Sends GOAWAY on every session, now and on any that starts later: the open streams finish. */
  drain(): void {
    this.draining = true;
    for (const session of this.sessions) session.close();
  }
}

/**
 * An engine's HTTP/2 server: the node:http adapter with the HTTP/2 head rules (and no WebSocket upgrades: RFC 8441 is
 * not served), with the hooks and options the engine gives its HTTP/1.1 requests.
 */
export function http2ConnectionsFor(
  handler: FetchHandler, hooks: AdapterHooks, options: AdapterOptions, settings: Settings, logger: Logger,
): Http2Connections {
  const listener = createRequestListener(handler, hooks, {
    ...options,
    upgrades: undefined,
    headRules: (incoming, method) => http2HeadViolation(method, incoming.rawHeaders),
  });
  return new Http2Connections(listener, http2OptionsOf(settings, options.limits!), logger);
}
