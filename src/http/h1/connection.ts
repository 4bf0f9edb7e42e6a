/**
 * An HTTP/1.1 server connection over any byte transport: parses requests (keep-alive, pipelining answered in
 * order, bodies streamed with backpressure, `Expect: 100-continue`), calls the app for one request at a time and
 * writes each response with backpressure. Parse errors are answered (400, 431, …) and close the connection.
 */
import type { X509Certificate } from 'node:crypto';
import { invalidRequestLine } from '../../glogging.ts';
import type { RemoteAddress, ServeInfo } from '../types.ts';
import { errorResponse, reasonPhrase } from '../app-response.ts';
import { MalformedBodyError } from '../head-policy.ts';
import { absoluteTargetUrl } from '../request-target.ts';
import { BodyTooLargeError, type RequestLimits } from '../limits.ts';
import { readIfReady, readyBodyLength } from '../ready-read.ts';
import { InvalidResponseFieldError } from '../response-policy.ts';
import { type BodySource, Exchange } from './exchange.ts';
import { RequestError, type RequestHead, RequestParser } from './request-parser.ts';
import { type AppFields, appFields, checkStatusText, type Framing, type HeadOptions, isBodyless, responseHead } from './response-head.ts';
import type { UpgradeOptions } from '../../websocket/app-handler.ts';
import type { WebSocketConnection, WebSocketTransport } from '../../websocket/connection.ts';
import type { WebSocketStarter } from '../../websocket/starter.ts';
import { upgradableInfo, UpgradeOffer, type UpgradedInfo } from '../../websocket/upgrade-offer.ts';

/** The socket under a connection, as the engine provides it. */
export interface H1Transport {
  /** Writes what the kernel takes now and returns how many bytes that was (the rest is the caller's). */
  write(data: Uint8Array): number;
  /** Closes after what has been written (FIN). */
  end(): void;
  /** Closes at once. */
  destroy(): void;
  pause(): void;
  resume(): void;
  readonly remoteAddr: RemoteAddress;
  /** The connection speaks TLS: its requests' URLs are https. */
  readonly secure: boolean;
  /** On TLS: the client's verified certificate, or null (src/http/client-certificate.ts). */
  clientCertificate?(): X509Certificate | null;
}

/**
 * Calls the app for a request; `done` resolves once the response has been written (or abandoned), to the bytes of
 * its body written (the access log's `%(b)s`); `head` is the request as received (the access log's request line).
 */
export type ServeFunction = (request: Request, info: ServeInfo, done: Promise<number>, head: RequestHead) => Response | Promise<Response>;

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n');
const NO_BODY: Framing = { kind: 'none' };
const EMPTY: Framing = { kind: 'length', length: 0 };
/** The most of a HEAD response's body read to learn its length (a GET's whole body is sent with one this size). */
const HEAD_LENGTH_LIMIT = 1024 * 1024;
/** Pipelined requests parsed ahead of the one being answered, beyond which reading pauses. */
const MAX_QUEUED = 16;

/** A body chunk in chunked transfer coding. */
function chunk(data: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${data.byteLength.toString(16)}\r\n`, 'latin1'), data, CRLF]);
}

/** The head and the start of the body in one buffer, for one write. */
function withHead(head: string, body?: Uint8Array): Buffer {
  if (!body) return Buffer.from(head, 'latin1');
  const data = Buffer.allocUnsafe(head.length + body.byteLength);
  data.write(head, 0, 'latin1');
  data.set(body, head.length);
  return data;
}

/**
 * The Fetch Request for a parsed head, its URL with `scheme` (`http` or `https`) unless the target is absolute;
 * throws on a target or field that Fetch refuses.
 */
function toRequest(exchange: Exchange, scheme: string): Request {
  const { method, target, rawHeaders } = exchange.head;
  let host = 'localhost';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (name.length === 4 && name.toLowerCase() === 'host') host = value;
    else if (name.length === 6 && name.toLowerCase() === 'expect' && value.toLowerCase() === '100-continue') {
      exchange.expectsContinue = exchange.head.minorVersion === 1;
    }
  }
  const url = target.charCodeAt(0) === 47 /* / */ ? `${scheme}://${host}${target}`
    : absoluteTargetUrl(target) ?? `${scheme}://${host}/${target}`;
  // Every init member costs Bun's constructor time (`method: 'GET'` alone about 0.15 µs), so the init holds only
  // what differs from the defaults; the fields go into the Request's own Headers rather than a Headers it copies.
  const init: RequestInit & { duplex?: 'half' } = { signal: exchange.abort.signal };
  if (method !== 'GET') init.method = method;
  if (exchange.body) {
    init.body = exchange.body;
    init.duplex = 'half';
  }
  const request = new Request(url, init);
  const headers = request.headers;
  for (let i = 0; i < rawHeaders.length; i += 2) headers.append(rawHeaders[i], rawHeaders[i + 1]);
  return request;
}

/** A field of a parsed head, repeats joined with commas (null when absent). */
function fieldOf(rawHeaders: string[], name: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === name) value = value === null ? rawHeaders[i + 1] : `${value}, ${rawHeaders[i + 1]}`;
  }
  return value;
}

/** One client connection. The engine feeds it the transport's events. */
export class H1Connection implements BodySource {
  private readonly transport: H1Transport;
  private readonly serve: ServeFunction;
  private readonly onError: (message: string, error: unknown) => void;
  private readonly headOptions: HeadOptions;
  private readonly parser: RequestParser;
  /** What the app is told about the client, the same for every request on the connection. */
  private readonly info: ServeInfo;
  /** Starts a WebSocket when the app upgrades a request (it exports a `websocket` handler); else undefined. */
  private readonly startWebSocket?: WebSocketStarter;
  /** The request the app has upgraded: its 101 goes out once the handler has returned. */
  private upgradeOffer?: UpgradeOffer;
  /** The WebSocket the connection has become: every byte and event goes to it. */
  private websocket?: WebSocketConnection;
  /** Its requests' URL scheme: `https` on a TLS connection. */
  private readonly scheme: string;
  private readonly answerQueued = () => void this.answer();
  /** Requests parsed and not yet answered, oldest first; the first is the one being answered. */
  private readonly queue: Exchange[] = [];
  /** The request whose head has been parsed and whose body has not ended yet. */
  private parsing?: Exchange;
  /** No more requests are read: the last one said so, the client half-closed, or the input was malformed. */
  private readClosed = false;
  /** A malformed request to answer once the requests before it are answered. */
  private pendingError?: RequestError;
  private answering = false;
  private closed = false;
  private readPaused = false;
  /** Bytes the transport has not taken yet, in order. */
  private unsent: Uint8Array[] = [];
  /** The body bytes of the response being written, for its `done`. */
  private bodyBytesWritten = 0;
  private flushWaiters: (() => void)[] = [];
  private graceTimer?: ReturnType<typeof setTimeout>;
  /** When bytes were first left unsent with none taken since (performance.now()); undefined while they flow. */
  private stuckSince: number | undefined;
  /** When the connection last became idle (no request being answered); undefined while busy. */
  idleSince: number | undefined = performance.now();
  /** Set once the worker drains: the grace a quiet connection gets before it is closed. */
  private drainGraceMs?: number;
  /** It has answered a request: quiet now, it is an idle keep-alive connection. */
  private served = false;

  constructor(
    transport: H1Transport, serve: ServeFunction, onError: (message: string, error: unknown) => void, limits: RequestLimits,
    headOptions: HeadOptions, startWebSocket?: WebSocketStarter,
  ) {
    this.transport = transport;
    this.headOptions = headOptions;
    this.serve = serve;
    this.onError = onError;
    this.info = transport.clientCertificate ? {
      remoteAddr: transport.remoteAddr,
      get clientCertificate() {
        return transport.clientCertificate!();
      },
    } : { remoteAddr: transport.remoteAddr };
    this.startWebSocket = startWebSocket;
    if (startWebSocket) this.info = upgradableInfo(this.info, (info, options) => this.acceptUpgrade(info, options));
    this.scheme = transport.secure ? 'https' : 'http';
    this.parser = new RequestParser({
      onHead: (head) => this.onHead(head),
      onBody: (data) => this.parsing?.pushBody(data, this),
      onMessageComplete: () => this.onMessageComplete(),
    }, limits);
  }

  /** Bytes from the client. */
  onData(data: Uint8Array): void {
    if (this.websocket) {
      this.websocket.onData(data);
      return;
    }
    if (this.readClosed || this.closed) return;
    try {
      this.parser.execute(data);
    } catch (error) {
      this.readClosed = true;
      // A body over --limit-request-body or malformed errors the body stream the app reads; the app's failure
      // then gets 413 or 400.
      if (this.parsing) {
        const bodyFailure = error instanceof BodyTooLargeError || error instanceof MalformedBodyError;
        this.parsing.fail(bodyFailure ? error : new MalformedBodyError((error as Error).message));
      } else {
        this.pendingError = error instanceof RequestError ? error : new RequestError(400, String(error));
      }
      this.parsing = undefined;
      void this.answer();
    }
  }

  /** The client half-closed: answer what has been read, then close. */
  onEnd(): void {
    // A WebSocket's client that half-closes without a close frame: the connection ends (the app hears 1006).
    if (this.websocket) return this.transport.end();
    this.readClosed = true;
    this.parsing?.fail(new MalformedBodyError('the client closed the connection before the request body ended'));
    this.parsing = undefined;
    void this.answer();
  }

  /** The transport can take more bytes. */
  onDrain(): void {
    let taken = 0;
    while (this.unsent.length > 0) {
      const data = this.unsent[0];
      const written = Math.max(this.transport.write(data), 0);
      taken += written;
      if (written < data.byteLength) {
        this.unsent[0] = data.subarray(written);
        if (taken > 0) this.stuckSince = performance.now();
        return;
      }
      this.unsent.shift();
    }
    this.stuckSince = undefined;
    this.releaseFlushWaiters();
    this.websocket?.onDrain();
  }

  /** The transport is closed (by either side). */
  onClose(): void {
    this.closed = true;
    clearTimeout(this.graceTimer);
    const gone = new Error('the client closed the connection');
    for (const exchange of this.queue) {
      exchange.abort.abort(gone);
      exchange.fail(gone);
    }
    this.parsing?.fail(gone);
    this.unsent = [];
    this.releaseFlushWaiters();
    this.websocket?.onClose();
  }

  /**
   * The worker drains: requests in flight finish (their responses close the connection), a connection without a
   * request yet closes after `graceMs` if still quiet, an idle keep-alive one after `idleGraceMs` (its client may
   * be sending a request at that very moment: connections.ts, drainIdleMs()).
   */
  drain(graceMs: number, idleGraceMs: number): void {
    this.drainGraceMs = graceMs;
    this.closeIfIdle(this.served ? idleGraceMs : graceMs);
  }

  /** Closes the connection if it is idle: at once, or after `graceMs` if it is still idle then. */
  closeIfIdle(graceMs: number): void {
    if (this.closed || this.idleSince === undefined || this.graceTimer) return;
    if (graceMs === 0) {
      this.transport.end();
      return;
    }
    // A keep-alive client may be sending a request at this very moment: it gets a short grace.
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined;
      if (this.idleSince !== undefined) this.transport.end();
    }, graceMs);
  }

  /** Cuts the connection (logged) if its client has taken none of the bytes written to it for `writeLimitMs`. */
  abortIfStuck(now: number, writeLimitMs: number): void {
    if (this.closed || this.stuckSince === undefined || now - this.stuckSince < writeLimitMs) return;
    this.onError(`Write timeout: ip=${this.transport.remoteAddr.hostname || '-'} took none of the response for ` +
      `${writeLimitMs / 1000} s; connection closed`, undefined);
    this.transport.destroy();
  }

  /** Cuts the connection if it still waits for a request (no request head complete since it became idle). */
  abortIfWaiting(): void {
    if (!this.closed && this.idleSince !== undefined) this.transport.destroy();
  }

  pauseReading(): void {
    if (this.readPaused || this.closed) return;
    this.readPaused = true;
    this.transport.pause();
  }

  resumeReading(): void {
    if (!this.readPaused || this.closed || this.queue.length > MAX_QUEUED) return;
    this.readPaused = false;
    this.transport.resume();
  }

  sendContinue(exchange: Exchange): void {
    if (this.queue[0] === exchange) this.send(CONTINUE);
  }

  private onHead(head: RequestHead): void {
    const streamBody = head.hasBody && head.method !== 'GET' && head.method !== 'HEAD';
    const exchange = new Exchange(head, this, streamBody);
    this.parsing = exchange;
    this.queue.push(exchange);
    this.idleSince = undefined;
    if (this.queue.length > MAX_QUEUED) this.pauseReading();
    // The app runs after the parser has returned, never inside its callback.
    if (this.queue.length === 1) queueMicrotask(this.answerQueued);
  }

  private onMessageComplete(): void {
    const exchange = this.parsing;
    this.parsing = undefined;
    if (!exchange) return;
    exchange.finish();
    if (!exchange.head.keepAlive || exchange.head.upgrade) this.readClosed = true;
  }

  /** Answers the queued requests one after another, then closes or waits for the next request. */
  private async answer(): Promise<void> {
    if (this.answering) return;
    this.answering = true;
    let close = false;
    while (this.queue.length > 0 && !this.closed && !close) {
      close = await this.answerOne(this.queue[0]);
      this.queue.shift();
      // Backpressure: the next pipelined request is answered once the client has taken this answer, so a client
      // that does not read holds at most MAX_QUEUED parsed requests and one answer (reading pauses past them).
      if (this.unsent.length > 0) await this.flushed();
      this.resumeReading();
    }
    this.answering = false;
    if (this.closed || this.websocket) return;
    if (!close && this.queue.length === 0 && this.pendingError) {
      const { status, message } = this.pendingError;
      this.pendingError = undefined;
      this.onError(invalidRequestLine(this.transport.remoteAddr.hostname, message), undefined);
      await this.writeError(status, reasonPhrase(status));
      close = true;
    }
    if (close || (this.readClosed && !this.parsing && this.queue.length === 0)) {
      await this.flushed();
      this.transport.end();
      return;
    }
    if (this.queue.length === 0) {
      this.idleSince = performance.now();
      this.served = true;
      if (this.drainGraceMs !== undefined) this.closeIfIdle(this.drainGraceMs);
    }
  }

  /** Answers one request; resolves to whether the connection must close after it. */
  private async answerOne(exchange: Exchange): Promise<boolean> {
    let request: Request;
    try {
      request = toRequest(exchange, this.scheme);
    } catch (error) {
      exchange.fail(error as Error);
      this.onError(invalidRequestLine(this.transport.remoteAddr.hostname, (error as Error).message), undefined);
      await this.writeError(400, 'Bad Request');
      return true;
    }
    let written!: (bodyBytes: number) => void;
    const done = new Promise<number>((resolve) => (written = resolve));
    this.bodyBytesWritten = 0;
    try {
      const response = await this.serve(request, this.info, done, exchange.head);
      if (this.upgradeOffer) return this.switchToWebSocket(this.upgradeOffer);
      const { head } = exchange;
      let fields: AppFields;
      try {
        fields = appFields(response.headers);
        checkStatusText(response.statusText);
      } catch (error) {
        if (!(error instanceof InvalidResponseFieldError)) throw error;
        // Nothing has been written: the client gets a 500, never the field (a split response).
        this.onError(`Error handling request ${head.method} ${head.target}`, error);
        response.body?.cancel().catch(() => {});
        await this.writeError(500, 'Internal Server Error');
        return true;
      }
      const close = !head.keepAlive || head.upgrade || !exchange.complete || fields.close;
      const http10KeepAlive = head.minorVersion === 0 && !close;
      const closeDelimited = await this.writeResponse(response, fields, head.method, head.minorVersion, close, http10KeepAlive);
      // A body the app left unread cannot be skipped reliably: the connection ends with this response.
      return close || closeDelimited || !exchange.complete;
    } catch (error) {
      if (!this.closed) this.onError(`Error writing response to ${exchange.head.method} ${exchange.head.target}`, error);
      this.transport.destroy();
      return true;
    } finally {
      written(this.bodyBytesWritten);
    }
  }

  /**
   * Writes a response: head and body, framed by Content-Length when it is known (given by the app, or the body
   * turns out to be one chunk), chunked otherwise. Resolves to whether the body was close-delimited.
   */
  private async writeResponse(response: Response, fields: AppFields, method: string, minorVersion: number, close: boolean, http10KeepAlive: boolean): Promise<boolean> {
    const body = response.body;
    const head = (framing: Framing) => responseHead(response, fields, this.headOptions, framing, close, http10KeepAlive);
    if (!body || isBodyless(method, response.status)) {
      if (!isBodyless(method, response.status)) this.send(withHead(head(EMPTY)));
      else if (body && method === 'HEAD' && fields.contentLength === null && response.status >= 200) {
        // HEAD gets the Content-Length its GET would have when the body is at hand (a string, bytes, a Blob).
        const length = await readyBodyLength(body, HEAD_LENGTH_LIMIT);
        this.send(withHead(head(length === undefined ? NO_BODY : { kind: 'length', length })));
      } else {
        if (body) await body.cancel().catch(() => {});
        this.send(withHead(head(NO_BODY)));
      }
      return false;
    }
    const reader = body.getReader();
    try {
      const first = await reader.read();
      if (first.done) {
        this.send(withHead(head(EMPTY)));
        return false;
      }
      this.bodyBytesWritten += first.value.byteLength;
      const declared = fields.contentLength;
      if (declared !== null && /^\d+$/.test(declared)) {
        this.send(withHead(head({ kind: 'length', length: Number(declared) }), first.value));
        await this.copyBody(reader, (data) => data);
        return false;
      }
      // A body already complete in one chunk gets a Content-Length; one still being produced (SSE) goes out at once.
      const next = reader.read();
      const settled = await readIfReady(next);
      if (settled?.done) {
        this.send(withHead(head({ kind: 'length', length: first.value.byteLength }), first.value));
        return false;
      }
      const chunked = minorVersion === 1;
      const framing: Framing = chunked ? { kind: 'chunked' } : { kind: 'close-delimited' };
      this.send(withHead(responseHead(response, fields, this.headOptions, framing, close || !chunked, false), chunked ? chunk(first.value) : first.value));
      await this.copyBody(reader, chunked ? chunk : (data) => data, next);
      if (chunked) this.send(LAST_CHUNK);
      return !chunked;
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    }
  }

  /**
   * info.upgrade() for the request being answered: a WebSocket handshake is taken over once the handler returns
   * (the request's head said Upgrade, so llhttp reads nothing after it).
   */
  private acceptUpgrade(info: UpgradedInfo, options: UpgradeOptions | undefined): boolean {
    if (this.upgradeOffer) return true;
    const exchange = this.queue[0];
    if (!exchange?.head.upgrade) return false;
    const { method, rawHeaders } = exchange.head;
    const offer = new UpgradeOffer({ method, field: (name) => fieldOf(rawHeaders, name) });
    if (!offer.accept(info, options)) return false;
    this.upgradeOffer = offer;
    return true;
  }

  /** Writes the 101 and hands the connection to a WebSocket; resolves to true (no more HTTP on it). */
  private switchToWebSocket(offer: UpgradeOffer): boolean {
    this.send(Buffer.from(offer.head(), 'latin1'));
    const transport: WebSocketTransport = {
      remoteAddress: this.transport.remoteAddr.hostname,
      write: (data) => this.send(data),
      bufferedAmount: () => this.unsentBytes(),
      end: () => void this.flushed().then(() => this.transport.end()),
      destroy: () => this.transport.destroy(),
    };
    this.websocket = this.startWebSocket!(transport, offer);
    return true;
  }

  private unsentBytes(): number {
    let bytes = 0;
    for (const data of this.unsent) bytes += data.byteLength;
    return bytes;
  }

  /** Answers with a plain-text error and `Connection: close`. */
  private writeError(status: number, text: string): Promise<boolean> {
    const response = errorResponse(status, text);
    return this.writeResponse(response, appFields(response.headers), 'GET', 1, true, false);
  }

  /** Copies the rest of a body, waiting whenever the transport has not taken the previous write. */
  private async copyBody(reader: ReadableStreamDefaultReader<Uint8Array>, frame: (data: Uint8Array) => Uint8Array, pending = reader.read()): Promise<void> {
    for (;;) {
      const { done, value } = await pending;
      if (done) return;
      if (this.closed) {
        await reader.cancel().catch(() => {});
        return;
      }
      if (value.byteLength > 0) {
        this.bodyBytesWritten += value.byteLength;
        this.send(frame(value));
      }
      await this.flushed();
      pending = reader.read();
    }
  }

  private send(data: Uint8Array): void {
    if (this.closed) return;
    if (this.unsent.length > 0) {
      this.unsent.push(data);
      return;
    }
    const written = Math.max(this.transport.write(data), 0);
    if (written < data.byteLength) {
      this.unsent.push(data.subarray(written));
      this.stuckSince = performance.now();
    }
  }

  /** Resolves once the transport has taken every byte written so far (or is closed). */
  private flushed(): Promise<void> {
    if (this.unsent.length === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  private releaseFlushWaiters(): void {
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
