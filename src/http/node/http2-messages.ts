/**
 * node:http2's compatibility request and response (the `Http2ServerRequest`/`Http2ServerResponse` options of
 * `http2.createServer`, honoured by Node, Deno and Bun alike), shaped so that the node:http adapter (listener.ts,
 * request.ts, response.ts) serves an HTTP/2 stream as it serves an HTTP/1.1 request:
 * - the request's `rawHeaders` are its regular fields only (the pseudo-headers, which a Fetch Headers cannot hold,
 *   are method, target and authority already), with `Host` from `:authority` when the client sent no Host (RFC 9113
 *   section 8.3.1: both name the same), which `headers.host` gets too, for request.url;
 * - the request's `socket` is the connection itself (node:http2 gives a proxy of it), which the engine's connection
 *   tracker knows;
 * - the response drops `Connection`, which HTTP/2 forbids (RFC 9113 section 8.2.2: node:http2 throws on it): the
 *   adapter sets it to close an HTTP/1.1 connection, while an HTTP/2 connection ends with GOAWAY (http2-server.ts);
 *   and it has no reason phrase (RFC 9113 section 8.3.2), which node:http2 would warn about.
 */
import http2 from 'node:http2';
import type { Socket } from 'node:net';

/** The connection of each session, as the HTTP/2 server received it (http2-server.ts). */
const sessionSockets = new WeakMap<http2.Http2Session, Socket>();

/** Records the connection a session runs on. */
export function bindSessionSocket(session: http2.Http2Session, socket: Socket): void {
  sessionSockets.set(session, socket);
}

/** A member's value as `Base` (or a class it extends) gives it to `self`: what `super.name` would read. */
const inherited = (base: object, self: object, name: string): unknown => Reflect.get(base, name, self);

/**
 * The request of one HTTP/2 stream, as the node:http adapter reads requests. Its `rawHeaders` and `socket` are
 * accessors of the runtimes' classes that the typings call properties: they are defined on the prototype below.
 */
export class FetchHttp2Request extends http2.Http2ServerRequest {
  #rawHeaders?: string[];
  /** The connection, kept: node:http2 unlinks a stream from its session when it closes. */
  readonly #socket?: Socket;

  constructor(...args: ConstructorParameters<typeof http2.Http2ServerRequest>) {
    super(...args);
    this.#socket = sessionSockets.get(args[0].session!);
    const headers = this.headers;
    if (headers.host === undefined && headers[':authority'] !== undefined) headers.host = headers[':authority'];
  }

  /** The regular fields, `Host` first when it stands for `:authority`. */
  static #regularFields(self: FetchHttp2Request): string[] {
    if (self.#rawHeaders) return self.#rawHeaders;
    const all = inherited(http2.Http2ServerRequest.prototype, self, 'rawHeaders') as string[];
    const fields: string[] = [];
    let host = false;
    for (let i = 0; i < all.length; i += 2) {
      const name = all[i];
      if (name.charCodeAt(0) === 58 /* : */) continue;
      if (name.length === 4 && name.toLowerCase() === 'host') host = true;
      fields.push(name, all[i + 1]);
    }
    const authority = self.headers[':authority'];
    if (!host && typeof authority === 'string') fields.unshift('host', authority);
    return (self.#rawHeaders = fields);
  }

  static {
    const regularFields = (self: FetchHttp2Request) => FetchHttp2Request.#regularFields(self);
    const socketOf = (self: FetchHttp2Request) => self.#socket;
    Object.defineProperty(FetchHttp2Request.prototype, 'rawHeaders', {
      get(this: FetchHttp2Request) {
        return regularFields(this);
      },
      configurable: true,
    });
    // The connection the stream came on, where node:http2 gives a proxy of it.
    Object.defineProperty(FetchHttp2Request.prototype, 'socket', {
      get(this: FetchHttp2Request) {
        return socketOf(this) ?? inherited(http2.Http2ServerRequest.prototype, this, 'socket');
      },
      configurable: true,
    });
  }
}

type OutgoingFields = Record<string, unknown>;

/** The response of one HTTP/2 stream, taking what the node:http adapter writes. */
export class FetchHttp2Response extends http2.Http2ServerResponse<FetchHttp2Request> {
  /** Ignores `Connection`; sets any other field. */
  override setHeader(name: string, value: number | string | readonly string[]): this {
    if (!isConnectionField(name)) super.setHeader(name, value);
    return this;
  }

  /** Writes the head without `Connection` and without a reason phrase. */
  override writeHead(statusCode: number, reasonOrFields?: string | OutgoingFields, fields?: OutgoingFields): this {
    const outgoing = typeof reasonOrFields === 'object' ? reasonOrFields : fields;
    // The adapter's own object, made for this response.
    if (outgoing && 'connection' in outgoing) delete outgoing.connection;
    return super.writeHead(statusCode, outgoing as unknown as Parameters<http2.Http2ServerResponse['writeHead']>[1]);
  }

  static {
    // HTTP/2 has no reason phrase: the adapter's is dropped (the typings call this accessor a property).
    Object.defineProperty(FetchHttp2Response.prototype, 'statusMessage', { get: () => '', set() {}, configurable: true });
  }
}

const isConnectionField = (name: string) => name.length === 10 && name.toLowerCase() === 'connection';
