/**
 * HTTP/1.x request parsing with the llhttp binding that Node and Bun expose as `process.binding('http_parser')`,
 * plus the limits and checks llhttp leaves to its caller (header count and size, request-line length, body size,
 * version).
 */
import { MalformedBodyError, headPolicyViolation, trailerViolation } from '../head-policy.ts';
import { BodyTooLargeError, maxHeadBytes, rawHeadViolation, type RequestLimits } from '../limits.ts';

/** A request head as parsed off the wire. */
export interface RequestHead {
  method: string;
  /** The request-target exactly as sent. */
  target: string;
  /** Field names and values, alternating, in wire order. */
  rawHeaders: string[];
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /** llhttp's verdict from the version and Connection: whether the connection may carry another request. */
  keepAlive: boolean;
  /** Whether a body follows (Content-Length above 0, or Transfer-Encoding). */
  hasBody: boolean;
  /** CONNECT or `Connection: upgrade`: nothing after this head belongs to HTTP/1.1. */
  upgrade: boolean;
}

/** What the parser reports while it parses. */
export interface ParserEvents {
  onHead(head: RequestHead): void;
  onBody(chunk: Uint8Array): void;
  onMessageComplete(): void;
}

/** A request the parser refuses, with the status to answer it with. */
export class RequestError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface LlhttpError extends Error {
  code: string;
  reason: string;
}

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Uint8Array): number | LlhttpError;
  [callback: number]: unknown;
}

interface LlhttpBinding {
  HTTPParser: {
    new (): LlhttpParser;
    REQUEST: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
  };
  methods: string[];
}

const binding = (process as unknown as { binding(name: 'http_parser'): LlhttpBinding }).binding('http_parser');
const { HTTPParser, methods } = binding;

/** The status llhttp's error codes call for. */
function statusOf(error: LlhttpError): number {
  return error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
}

function hasBodyFraming(rawHeaders: string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name.length === 14 && name.toLowerCase() === 'content-length') return rawHeaders[i + 1].trim() !== '0';
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return true;
  }
  return false;
}

/** Parses the requests of one connection, in order, from the bytes fed to it. */
export class RequestParser {
  private readonly parser = new HTTPParser();
  /** Fields and target that llhttp hands over before the head ends (it flushes every 32 fields). */
  private pendingHeaders: string[] = [];
  private pendingTarget = '';
  /** A failure raised inside a callback, reported by execute(). */
  private failure?: Error;
  /** Body bytes of the current request so far, for --limit-request-body. */
  private bodyBytes = 0;

  /** `limits`: Gunicorn's request limits, applied to every request head and body. */
  constructor(events: ParserEvents, limits: RequestLimits) {
    const parser = this.parser;
    parser.initialize(HTTPParser.REQUEST, {}, maxHeadBytes(limits), 0);
    parser[HTTPParser.kOnHeaders] = (headers: string[], target: string) => {
      this.pendingHeaders.push(...headers);
      this.pendingTarget += target;
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      major: number, minor: number, headers: string[] | undefined, method: number, target: string | undefined,
      _status: unknown, _reason: unknown, upgrade: boolean, keepAlive: boolean,
    ) => {
      if (this.failure) return -1;
      const rawHeaders = headers ?? this.pendingHeaders;
      const fullTarget = target ?? this.pendingTarget;
      this.pendingHeaders = [];
      this.pendingTarget = '';
      try {
        const methodName = methods[method];
        // The limits first, as Gunicorn checks them while it reads the head.
        const violation = rawHeadViolation(limits, methodName, fullTarget, rawHeaders)
          ?? headPolicyViolation(methodName, fullTarget, major, minor, rawHeaders);
        if (violation) throw new RequestError(violation.status, violation.reason);
        this.bodyBytes = 0;
        events.onHead({
          method: methodName, target: fullTarget, rawHeaders, minorVersion: minor, keepAlive, upgrade,
          hasBody: hasBodyFraming(rawHeaders),
        });
      } catch (error) {
        this.failure = error as Error;
        // Any other value than 0-2 makes llhttp stop with HPE_CB_HEADERS_COMPLETE.
        return -1;
      }
      return 0;
    };
    parser[HTTPParser.kOnBody] = (chunk: Uint8Array) => {
      if (this.failure) return;
      this.bodyBytes += chunk.byteLength;
      if (limits.body > 0 && this.bodyBytes > limits.body) this.failure = new BodyTooLargeError(limits.body);
      else events.onBody(chunk);
    };
    // After a failure llhttp may go on through the rest of the bytes: nothing more reaches the connection.
    parser[HTTPParser.kOnMessageComplete] = () => {
      // llhttp hands a chunked body's trailer fields to kOnHeaders just before this: a forbidden one fails the
      // body, so the app never sees it complete.
      if (this.pendingHeaders.length > 0) {
        this.failure ??= trailerViolation(this.pendingHeaders);
        this.pendingHeaders = [];
      }
      if (!this.failure) events.onMessageComplete();
    };
  }

  /**
   * Parses `data`; throws a RequestError on malformed input (a BodyTooLargeError or MalformedBodyError for a
   * body that fails). Events for everything before the error have been delivered by then.
   */
  execute(data: Uint8Array): void {
    const result = this.parser.execute(data);
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      const known = failure instanceof RequestError || failure instanceof BodyTooLargeError || failure instanceof MalformedBodyError;
      throw known ? failure : new RequestError(500, failure.message);
    }
    if (typeof result !== 'number') {
      // An upgrade stops llhttp on purpose; the connection closes after that request anyway.
      if (result.code === 'HPE_PAUSED_UPGRADE') return;
      throw new RequestError(statusOf(result), `${result.code}: ${result.reason}`);
    }
  }
}
