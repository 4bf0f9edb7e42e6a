/**
 * Gunicorn's request limits (`--limit-request-line`, `--limit-request-fields`, `--limit-request-field_size`,
 * `--limit-request-body`) as numbers an engine applies before the handler sees a request.
 */
import type { Settings } from '../settings.ts';
import { fetchPolicyViolation, type PolicyViolation } from './head-policy.ts';

/** The most any request-line limit can be (Gunicorn caps it at 8190). */
const MAX_REQUEST_LINE = 8190;
/** The most header fields a request can have (Gunicorn's cap). */
const MAX_REQUEST_FIELDS = 32768;
/** The header-line size that 0 stands for. */
const DEFAULT_FIELD_SIZE = 8190;

/** Effective limits: every one is a positive number of bytes or fields, except `body` (0 = unlimited). */
export interface RequestLimits {
  requestLine: number;
  fields: number;
  fieldSize: number;
  body: number;
}

/** The limits a configuration asks for, with 0 and out-of-range values mapped as Gunicorn maps them. */
export function requestLimitsOf(settings: Pick<Settings, 'limitRequestLine' | 'limitRequestFields' |
  'limitRequestFieldSize' | 'limitRequestBody'>): RequestLimits {
  const capped = (value: number, max: number) => (value <= 0 || value > max ? max : value);
  return {
    requestLine: capped(settings.limitRequestLine, MAX_REQUEST_LINE),
    fields: capped(settings.limitRequestFields, MAX_REQUEST_FIELDS),
    fieldSize: settings.limitRequestFieldSize <= 0 ? DEFAULT_FIELD_SIZE : settings.limitRequestFieldSize,
    body: settings.limitRequestBody,
  };
}

/** Why a request head breaks the limits: the status to answer and the reason to log. */
export interface LimitViolation {
  status: 413 | 414 | 431;
  reason: string;
}

/** A request body grew past `--limit-request-body` while it streamed in: the engine answers 413. */
export class BodyTooLargeError extends Error {
  /** The status of the answer. */
  readonly status = 413;
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes (--limit-request-body)`);
  }
}

/** The request line's length, `METHOD SP target SP HTTP/1.x`, from its method and the target's length. */
const requestLineBytes = (method: string, targetLength: number) => method.length + targetLength + 10;

function lineViolation(limits: RequestLimits, lineBytes: number): LimitViolation | undefined {
  return lineBytes > limits.requestLine
    ? { status: 414, reason: `request line of ${lineBytes} bytes (limit ${limits.requestLine})` }
    : undefined;
}

function bodyViolation(limits: RequestLimits, contentLength: string | null | undefined): LimitViolation | undefined {
  if (limits.body === 0 || contentLength == null || !(Number(contentLength) > limits.body)) return undefined;
  return { status: 413, reason: `body of ${contentLength} bytes (limit ${limits.body})` };
}

/** A header line's size as Gunicorn counts it: name, ": ", value, CRLF. */
const fieldBytes = (name: string, value: string) => name.length + value.length + 4;

function fieldViolation(limits: RequestLimits, name: string, bytes: number): LimitViolation {
  return { status: 431, reason: `header ${name} of ${bytes} bytes (limit ${limits.fieldSize})` };
}

function countViolation(limits: RequestLimits, count: number): LimitViolation | undefined {
  return count > limits.fields ? { status: 431, reason: `${count} header fields (limit ${limits.fields})` } : undefined;
}

/**
 * Checks a request head parsed off the wire: its method and target, its fields as a flat
 * [name, value, name, value, …] list (node's rawHeaders shape) and its Content-Length.
 */
export function rawHeadViolation(
  limits: RequestLimits, method: string, target: string, rawHeaders: readonly string[],
): LimitViolation | undefined {
  const early = lineViolation(limits, requestLineBytes(method, target.length)) ?? countViolation(limits, rawHeaders.length / 2);
  if (early) return early;
  let contentLength: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const bytes = fieldBytes(rawHeaders[i], rawHeaders[i + 1]);
    if (bytes > limits.fieldSize) return fieldViolation(limits, rawHeaders[i], bytes);
    if (rawHeaders[i].length === 14 && rawHeaders[i].toLowerCase() === 'content-length') contentLength = rawHeaders[i + 1];
  }
  return bodyViolation(limits, contentLength);
}

/**
 * Checks a Fetch Request made by a native server, whose parser has its own limits and none of ours: the target
 * is read from the URL after its origin; repeated fields arrive merged, so they count once. The head rules that
 * can still be told from the Request are checked in the same pass (src/http/head-policy.ts). `onField` sees every
 * field (name in lower case) on the way, for a caller that looks for fields of its own without a second pass.
 */
export function fetchRequestViolation(
  limits: RequestLimits, request: Request, onField?: (name: string, value: string) => void,
): LimitViolation | PolicyViolation | undefined {
  const url = request.url;
  const method = request.method;
  const pathStart = url.indexOf('/', url.indexOf('//') + 2);
  const early = lineViolation(limits, requestLineBytes(method, pathStart < 0 ? 1 : url.length - pathStart));
  if (early) return early;
  // forEach, not the iterator: on Deno it costs a seventh as much.
  let count = 0;
  let largest = 0;
  let largestName = '';
  let contentLength: string | undefined;
  // The same pass collects what the head rules still can check on a native server's Request.
  let host: string | undefined;
  let expect: string | undefined;
  request.headers.forEach((value, name) => {
    count++;
    onField?.(name, value);
    const bytes = fieldBytes(name, value);
    if (bytes > largest) {
      largest = bytes;
      largestName = name;
    }
    if (name === 'content-length') contentLength = value;
    else if (name === 'host') host = value;
    else if (name === 'expect') expect = value;
  });
  if (largest > limits.fieldSize) return fieldViolation(limits, largestName, largest);
  return countViolation(limits, count) ?? fetchPolicyViolation(method, host, contentLength, expect) ??
    bodyViolation(limits, contentLength);
}

/**
 * A body stream that errors with BodyTooLargeError once more than `limit` bytes have come through, for bodies
 * whose length is not declared (chunked).
 */
export function limitedBody(body: ReadableStream<Uint8Array>, limit: number): ReadableStream<Uint8Array> {
  let seen = 0;
  return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) controller.error(new BodyTooLargeError(limit));
      else controller.enqueue(chunk);
    },
  }));
}
