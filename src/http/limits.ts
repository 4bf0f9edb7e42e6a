/**
 * Gunicorn's request limits (`--limit-request-line`, `--limit-request-fields`, `--limit-request-field_size`,
 * `--limit-request-body`) as numbers an engine applies before the handler sees a request.
 */
import type { Settings } from '../settings.ts';
import { fetchPolicyViolation, type PolicyViolation } from './head-policy.ts';
import { pathStartOf } from './request-target.ts';

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

/** The cap on a whole request head's bytes that node:http and Bun.serve apply by default (431 past it). */
const DEFAULT_MAX_HEAD_BYTES = 16384;

/**
 * The cap on a request head's bytes for a parser that refuses oversized heads itself (llhttp in bun-listen,
 * Bun.serve through `--max-http-header-size`): the runtimes' default, or more where the limits allow a request
 * line and one field at their largest (the limits refuse the rest with their own status).
 */
export const maxHeadBytes = (limits: RequestLimits) =>
  Math.max(DEFAULT_MAX_HEAD_BYTES, limits.requestLine + 2 * limits.fieldSize + 8);

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

/** Visits a request's fields as `(value, name)`, names in lower case (Headers.forEach's shape). */
export type RequestFieldVisitor = (request: Request, visit: (value: string, name: string) => void) => void;

/** Visits a request's fields through its Headers (forEach, not the iterator: on Deno it costs a seventh as much). */
export const forEachHeader: RequestFieldVisitor = (request, visit) => request.headers.forEach(visit);

/**
 * What the pass over one request's fields has found so far: module state, reset per request, so that the pass
 * makes no closure per request.
 */
const seen = {
  count: 0,
  largest: 0,
  largestName: '',
  contentLength: undefined as string | undefined,
  host: undefined as string | undefined,
  expect: undefined as string | undefined,
  contentTypes: 0,
  onField: undefined as ((name: string, value: string) => void) | undefined,
};

/** A field's value with a repeat of it merged in as Headers merges them (`a, b`), for servers that do not merge. */
export const mergedField = (previous: string | undefined, value: string): string =>
  (previous === undefined ? value : `${previous}, ${value}`);

function visitField(value: string, name: string): void {
  seen.count++;
  seen.onField?.(name, value);
  const bytes = fieldBytes(name, value);
  if (bytes > seen.largest) {
    seen.largest = bytes;
    seen.largestName = name;
  }
  if (name === 'content-length') seen.contentLength = mergedField(seen.contentLength, value);
  else if (name === 'host') seen.host = mergedField(seen.host, value);
  else if (name === 'expect') seen.expect = value;
  else if (name === 'content-type') seen.contentTypes++;
}

/**
 * Checks a Fetch Request made by a native server, whose parser has its own limits and none of ours: the target
 * is read from the URL after its origin; fields are read with `forEachField` (a server's own list where reading
 * `headers` costs more), and repeated ones count once where the server merged them (Bun.serve). The head rules that can
 * still be told from the Request are checked in the same pass (src/http/head-policy.ts). `onField` sees every
 * field on the way, for a caller that looks for fields of its own without a second pass. The request's
 * Content-Length, if any, is `lastContentLength` afterwards.
 */
export function fetchRequestViolation(
  limits: RequestLimits, request: Request, forEachField: RequestFieldVisitor, onField?: (name: string, value: string) => void,
): LimitViolation | PolicyViolation | undefined {
  const url = request.url;
  const method = request.method;
  const pathStart = pathStartOf(url);
  const early = lineViolation(limits, requestLineBytes(method, pathStart < 0 ? 1 : url.length - pathStart));
  if (early) return early;
  seen.count = seen.largest = seen.contentTypes = 0;
  seen.largestName = '';
  seen.contentLength = seen.host = seen.expect = undefined;
  seen.onField = onField;
  forEachField(request, visitField);
  seen.onField = undefined;
  if (seen.largest > limits.fieldSize) return fieldViolation(limits, seen.largestName, seen.largest);
  return countViolation(limits, seen.count) ?? fetchPolicyViolation(method, seen) ??
    bodyViolation(limits, seen.contentLength);
}

/** The Content-Length of the request fetchRequestViolation last checked (undefined: none). */
export const lastContentLength = (): string | undefined => seen.contentLength;

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
