/**
 * The Fetch Request a handler receives for a node:http request. It is an instance of the runtime's own Request
 * (`instanceof Request` holds, the globals stay untouched) that builds its URL, headers and AbortSignal only when
 * the handler reads them, and whose text(), json() and arrayBuffer() read the IncomingMessage directly. Everything
 * else a Request offers (body, formData(), clone(), …) is served by a native Request built from the same parts on
 * first use.
 */
import type http from 'node:http';
import { Readable } from 'node:stream';
import { trailerViolation } from '../head-policy.ts';
import { absoluteTargetUrl } from '../request-target.ts';
import { changesUrl, type Forwarded, forwardedUrl } from '../forwarded.ts';
import { BodyTooLargeError, limitedBody } from '../limits.ts';

const NativeRequest = globalThis.Request;

/** Thrown when a request's target, Host or headers cannot make a Fetch Request; the client gets a 400. */
export class MalformedRequestError extends TypeError {}

/**
 * Whether the request carries a body: HTTP/1.1 announces one with Content-Length or Transfer-Encoding; an HTTP/2
 * stream has one unless its HEADERS frame ended it (the `stream` of node:http2's compatibility request).
 */
function hasBody(incoming: http.IncomingMessage): boolean {
  const { method, headers } = incoming;
  if (method === 'GET' || method === 'HEAD') return false;
  return headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined ||
    (incoming as { stream?: { endAfterHeaders: boolean } }).stream?.endAfterHeaders === false;
}

/** The request's URL as the client sent it (absolute-form, or `scheme`, Host and path), not yet parsed. */
function unparsedUrlOf(incoming: http.IncomingMessage, scheme: string): string {
  const target = incoming.url ?? '/';
  if (target.charCodeAt(0) !== 47 /* / */) {
    const absolute = absoluteTargetUrl(target);
    if (absolute !== undefined) return absolute;
  }
  const path = target.startsWith('/') ? target : `/${target}`;
  return `${scheme}://${incoming.headers.host ?? 'localhost'}${path}`;
}

function urlOf(incoming: http.IncomingMessage, scheme: string): string {
  try {
    return new URL(unparsedUrlOf(incoming, scheme)).href;
  } catch {
    throw new MalformedRequestError(`Invalid request target ${JSON.stringify(incoming.url ?? '/')}`);
  }
}

function headersOf(rawHeaders: string[]): Headers {
  const headers = new Headers();
  try {
    for (let i = 0; i < rawHeaders.length; i += 2) headers.append(rawHeaders[i], rawHeaders[i + 1]);
  } catch (error) {
    throw new MalformedRequestError((error as Error).message);
  }
  return headers;
}

/** The raw headers as name-value pairs, which a Request's constructor copies in one pass. */
function headerPairsOf(rawHeaders: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) pairs.push([rawHeaders[i], rawHeaders[i + 1]]);
  return pairs;
}

/** `body` as a stream that calls `onFirstRead` when its reader first asks for data (and not before). */
function continuedOnFirstRead(body: ReadableStream<Uint8Array>, onFirstRead: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let first = true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (first) {
        first = false;
        onFirstRead();
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

const utf8 = new TextDecoder();

/** The whole body of an IncomingMessage, in one ArrayBuffer of its own; past `limit` bytes (0: none) it fails. */
function readAll(incoming: http.IncomingMessage, limit: number): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) => {
    if (incoming.readableEnded || incoming.destroyed) {
      reject(new TypeError('The request body is gone: the response was sent before it was read'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (limit > 0 && size > limit) reject(new BodyTooLargeError(limit));
      else chunks.push(chunk);
    });
    incoming.once('end', () => {
      // A chunked body's trailer fields are known at its end: a forbidden one fails the body (the client gets 400).
      const forbidden = incoming.rawTrailers.length > 0 ? trailerViolation(incoming.rawTrailers) : undefined;
      if (forbidden) {
        reject(forbidden);
        return;
      }
      const bytes = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.byteLength;
      }
      resolve(bytes.buffer);
    });
    incoming.once('error', reject);
    incoming.once('close', () => {
      if (!incoming.complete) reject(new DOMException('The client went away before sending the whole body', 'AbortError'));
    });
  });
}

/** A lazy Request over an IncomingMessage; see the module comment. */
export class NodeRequest {
  readonly #incoming: http.IncomingMessage;
  #url?: string;
  #headers?: Headers;
  #abortController?: AbortController;
  /** Why the request was aborted (the client went away, or --request-timeout) before its signal was built. */
  #abortReason?: unknown;
  #aborted = false;
  /** Set once text(), json() or arrayBuffer() has taken the body straight from the IncomingMessage. */
  #bodyTaken = false;
  #native?: Request;

  /** Bytes the body may have (--limit-request-body; 0 = unlimited): reading past them fails with BodyTooLargeError. */
  readonly #bodyLimit: number;
  /** The response to send `100 Continue` on when the body is first read (the client awaits it); then undefined. */
  #continueOn?: http.ServerResponse;
  /** `https` when the request came on a TLS connection: read at once, since the socket is gone once the client is. */
  readonly #scheme: string;

  /** `continueOn`: given when the client sent `Expect: 100-continue`, which is answered on the first body read. */
  constructor(incoming: http.IncomingMessage, bodyLimit = 0, continueOn?: http.ServerResponse) {
    this.#incoming = incoming;
    this.#bodyLimit = bodyLimit;
    this.#continueOn = continueOn;
    this.#scheme = (incoming.socket as { encrypted?: boolean } | null)?.encrypted ? 'https' : 'http';
  }

  get method(): string {
    return this.#incoming.method ?? 'GET';
  }

  get url(): string {
    return (this.#url ??= urlOf(this.#incoming, this.#scheme));
  }

  get headers(): Headers {
    return (this.#headers ??= this.#native?.headers ?? headersOf(this.#incoming.rawHeaders));
  }

  get signal(): AbortSignal {
    if (!this.#abortController) {
      this.#abortController = new AbortController();
      if (this.#aborted) this.#abortController.abort(this.#abortReason);
    }
    return this.#abortController.signal;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return hasBody(this.#incoming) ? this.#materialize().body : null;
  }

  get bodyUsed(): boolean {
    return this.#bodyTaken || (this.#native?.bodyUsed ?? false);
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#native || !hasBody(this.#incoming)) return this.#materialize().arrayBuffer();
    if (this.#bodyTaken) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
    this.#bodyTaken = true;
    this.#sendContinue();
    return readAll(this.#incoming, this.#bodyLimit);
  }

  async text(): Promise<string> {
    return utf8.decode(await this.arrayBuffer());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** Sends `100 Continue` if the client awaits it, once. */
  #sendContinue(): void {
    this.#continueOn?.writeContinue();
    this.#continueOn = undefined;
  }

  #bodyStream(): ReadableStream<Uint8Array> {
    const incoming = this.#incoming;
    let stream = Readable.toWeb(incoming) as ReadableStream<Uint8Array>;
    // Only a chunked body has trailers: it errors instead of ending when one is forbidden.
    if (incoming.headers['transfer-encoding'] !== undefined) {
      stream = stream.pipeThrough(new TransformStream({
        flush(controller) {
          const forbidden = trailerViolation(incoming.rawTrailers);
          if (forbidden) controller.error(forbidden);
        },
      }));
    }
    // The limit last, next to the handler: its error reaches the handler before the cancel it causes upstream
    // destroys the connection (which would leave no socket for the 413).
    if (this.#bodyLimit > 0) stream = limitedBody(stream, this.#bodyLimit);
    return this.#continueOn ? continuedOnFirstRead(stream, () => this.#sendContinue()) : stream;
  }

  #materialize(): Request {
    if (!this.#native) {
      const incoming = this.#incoming;
      const body = !hasBody(incoming) ? null : this.#bodyTaken ? new Uint8Array(0) : this.#bodyStream();
      // URL and headers not read yet are handed over unparsed: the constructor parses and checks them anyway.
      const headers = this.#headers ?? headerPairsOf(incoming.rawHeaders);
      const init = { method: this.method, headers, body, signal: this.signal, duplex: 'half' };
      try {
        this.#native = new NativeRequest(this.#url ?? unparsedUrlOf(incoming, this.#scheme), init as RequestInit);
      } catch (error) {
        // A malformed URL or header throws its MalformedRequestError (a 400) here; anything else is rethrown.
        if (this.#url === undefined) urlOf(incoming, this.#scheme);
        if (this.#headers === undefined) headersOf(incoming.rawHeaders);
        throw error;
      }
      // A body already taken leaves the native Request's body used up too (clone() and copies throw).
      if (this.#bodyTaken) this.#native.arrayBuffer().catch(() => {});
    }
    return this.#native;
  }

  /** Gives the request the scheme and host a trusted proxy forwarded (throws a ForwardedHeaderError if no URL). */
  static forward(request: NodeRequest, forwarded: Forwarded): void {
    if (changesUrl(forwarded)) request.#url = forwardedUrl(unparsedUrlOf(request.#incoming, request.#scheme), forwarded);
  }

  /**
   * Aborts the request's signal, now if the handler took it or else at birth: the client went away (no reason:
   * the default AbortError) or the request timed out.
   */
  static abort(request: NodeRequest, reason?: unknown): void {
    if (request.#aborted) return;
    request.#aborted = true;
    request.#abortReason = reason;
    request.#abortController?.abort(reason);
  }

  /**
   * The Request to give the handler: the lazy one where the runtime's Request constructor accepts it as input
   * (`new Request(request)`), else a native Request built now (undici 7, in Node 24, reads private fields).
   */
  static forHandler(request: NodeRequest): Request {
    return copyableByNativeRequest ? (request as unknown as Request) : request.#materialize();
  }

  static {
    const forwarded = NodeRequest.prototype as unknown as Record<PropertyKey, unknown>;
    const materialize = (self: unknown) => (self as NodeRequest).#materialize() as unknown as Record<PropertyKey, unknown>;
    // Every other Request member (text(), clone(), cache, …) is answered by the native Request.
    for (const key of Reflect.ownKeys(NativeRequest.prototype)) {
      if (key === 'constructor' || key === Symbol.toStringTag || Object.hasOwn(forwarded, key)) continue;
      const member = Object.getOwnPropertyDescriptor(NativeRequest.prototype, key)!;
      const { value, get } = member;
      if (typeof value === 'function') {
        const method = function (this: unknown, ...args: unknown[]) {
          return value.apply(materialize(this), args);
        };
        Object.defineProperty(forwarded, key, { ...member, value: method });
      } else if (get) {
        const getter = function (this: unknown) {
          return get.call(materialize(this));
        };
        Object.defineProperty(forwarded, key, { ...member, get: getter, set: undefined });
      }
    }
    // `new Request(request)` reads the input's internal slots: undici 6 (Node 20, 22) and Deno keep them in
    // symbol-keyed properties, which can be forwarded to the native Request too.
    for (const slot of Object.getOwnPropertySymbols(new NativeRequest('http://localhost/'))) {
      Object.defineProperty(forwarded, slot, {
        get(this: unknown) {
          return materialize(this)[slot];
        },
        set(this: unknown, value: unknown) {
          materialize(this)[slot] = value;
        },
      });
    }
    Object.setPrototypeOf(NodeRequest.prototype, NativeRequest.prototype);
  }
}

/** Whether this runtime's `new Request(input)` can copy a lazy request (checked once, on a stand-in message). */
const copyableByNativeRequest = (() => {
  const standIn = { method: 'GET', url: '/probe', headers: { host: 'probe' }, rawHeaders: ['Host', 'probe', 'X-Probe', '1'] };
  try {
    const copy = new NativeRequest(new NodeRequest(standIn as unknown as http.IncomingMessage) as unknown as Request);
    return copy.url === 'http://probe/probe' && copy.headers.get('x-probe') === '1';
  } catch {
    return false;
  }
})();
