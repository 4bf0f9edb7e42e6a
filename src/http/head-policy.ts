/**
 * The request-head rules that llhttp leaves to its caller, as Gunicorn's parser applies them: one Host and one
 * Content-Type at most, no chunked body on HTTP/1.0, `chunked` once and last (501 for a transfer coding tsgunicorn
 * cannot read), no expectation but `100-continue` (417), `*` as a target only for OPTIONS, HTTP/1.0 or 1.1 only;
 * and, where Gunicorn is lenient, RFC 9112's Host on every HTTP/1.1 request (node:http requires it too). Also the
 * fields a chunked body's trailer section may not carry. Native servers (Deno.serve, Bun.serve) parse with their
 * own rules. CONNECT, TRACE and TRACK get 501: a Fetch Request cannot have these methods.
 */

/** A head that breaks a rule: the status to answer (400, 417, 501) and the reason to log. */
export interface PolicyViolation {
  status: 400 | 417 | 501;
  reason: string;
}

/**
 * Whether the Fetch standard forbids a Request this method (CONNECT, TRACE, TRACK): such requests cannot reach a
 * Fetch handler. Lengths first: cheaper than a Set on every request.
 */
const fetchForbidsMethod = (method: string) => method.length === 7 ? method === 'CONNECT'
  : method.length === 5 && (method === 'TRACE' || method === 'TRACK');

/** Transfer codings a request may name before `chunked` (they are passed on to the app undecoded). */
const KNOWN_CODINGS = new Set(['gzip', 'x-gzip', 'deflate', 'compress', 'x-compress', 'identity']);

const OWS_AROUND = /^[ \t]+|[ \t]+$/g;

/** Whether an Expect field value asks for something else than `100-continue` (the only expectation there is). */
const unsupportedExpectation = (value: string) => value.trim().toLowerCase() !== '100-continue';

/**
 * Checks one Transfer-Encoding field value; `chunkedSeen`: an earlier field ended with `chunked`. Returns the
 * violation, or whether this value ends with `chunked`.
 */
function transferCodingViolation(value: string, chunkedSeen: boolean): PolicyViolation | boolean {
  let chunked = chunkedSeen;
  for (const part of value.split(',')) {
    // Optional whitespace is SP and HTAB only: trim() would also take latin-1's NBSP off `chunked\xa0`.
    const coding = part.replace(OWS_AROUND, '').toLowerCase();
    if (chunked) return { status: 400, reason: `Transfer-Encoding ${JSON.stringify(value)}: a coding after chunked` };
    if (coding === 'chunked') chunked = true;
    else if (!KNOWN_CODINGS.has(coding)) return { status: 501, reason: `unsupported transfer coding ${JSON.stringify(coding)}` };
  }
  return chunked;
}

/** Checks a head parsed off the wire: method, target, HTTP version and fields as a flat [name, value, …] list. */
export function headPolicyViolation(
  method: string, target: string, major: number, minor: number, rawHeaders: readonly string[],
): PolicyViolation | undefined {
  if (major !== 1 || minor > 1) return { status: 400, reason: `unsupported HTTP version ${major}.${minor}` };
  if (target === '*' && method !== 'OPTIONS') return { status: 400, reason: `target * with ${method}` };
  if (fetchForbidsMethod(method)) return { status: 501, reason: `method ${method}: a Fetch Request cannot have it` };
  let hosts = 0;
  let contentTypes = 0;
  /** undefined: no Transfer-Encoding; else whether the codings so far end with chunked. */
  let chunked: boolean | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // The length first: most fields are none of these, and that costs a few comparisons.
    const length = name.length;
    if (length === 4) {
      if (name.toLowerCase() === 'host') hosts++;
    } else if (length === 12) {
      if (name.toLowerCase() === 'content-type') contentTypes++;
    } else if (length === 6) {
      // Accept, Cookie and Origin are 6 long too: the first letter (any case) before a lower-cased copy.
      if ((name.charCodeAt(0) | 32) === 101 /* e */ && minor === 1 && name.toLowerCase() === 'expect' &&
        unsupportedExpectation(rawHeaders[i + 1])) {
        return { status: 417, reason: `unsupported expectation ${JSON.stringify(rawHeaders[i + 1])}` };
      }
    } else if (length === 17 && (name.charCodeAt(0) | 32) === 116 /* t */ && name.toLowerCase() === 'transfer-encoding') {
      if (minor === 0) return { status: 400, reason: 'Transfer-Encoding on an HTTP/1.0 request' };
      const result = transferCodingViolation(rawHeaders[i + 1], chunked === true);
      if (typeof result === 'object') return result;
      chunked = result;
    }
  }
  if (hosts > 1) return { status: 400, reason: 'more than one Host header' };
  if (hosts === 0 && minor === 1) return { status: 400, reason: 'HTTP/1.1 request without Host (RFC 9112 section 3.2)' };
  if (contentTypes > 1) return { status: 400, reason: 'more than one Content-Type header' };
  if (chunked === false) return { status: 501, reason: 'Transfer-Encoding without chunked: no way to read the body' };
  return undefined;
}

/** What one pass over a native server's request fields found, for fetchPolicyViolation. */
export interface FetchFieldSummary {
  /** Host, repeats joined with `, ` (as Headers joins them). */
  host: string | undefined;
  /** Content-Length, repeats joined with `, `. */
  contentLength: string | undefined;
  expect: string | undefined;
  /** Content-Type fields seen (1 for repeats a server merged). */
  contentTypes: number;
}

/**
 * The head rules a native server's Request still lets tsgunicorn check, from fields its parser accepted: a method
 * a Fetch Request should not have (Deno.serve and Bun.serve hand CONNECT to the handler), a repeated Host or
 * Content-Length, a repeated Content-Type where the server lists repeats apart (Deno.serve), an expectation other
 * than `100-continue`. The request's HTTP version is unknown there, so an Expect on HTTP/1.0 is refused too.
 */
export function fetchPolicyViolation(method: string, fields: FetchFieldSummary): PolicyViolation | undefined {
  if (fetchForbidsMethod(method)) return { status: 501, reason: `method ${method}: a Fetch Request cannot have it` };
  if (fields.host?.includes(',')) return { status: 400, reason: 'more than one Host header' };
  if (fields.contentLength?.includes(',')) return { status: 400, reason: 'more than one Content-Length header' };
  if (fields.contentTypes > 1) return { status: 400, reason: 'more than one Content-Type header' };
  if (fields.expect !== undefined && unsupportedExpectation(fields.expect)) {
    return { status: 417, reason: `unsupported expectation ${JSON.stringify(fields.expect)}` };
  }
  return undefined;
}

/** Fields a trailer section may not carry (Gunicorn's list): they frame, route or authorize the request. */
const FORBIDDEN_TRAILERS = new Set(['host', 'content-length', 'transfer-encoding', 'trailer', 'authorization', 'te']);

/**
 * A body that cannot be read to its end as sent (bad chunked framing, a forbidden trailer field, the client closing
 * in its middle): the body stream fails, the app never sees it complete, and the client gets 400.
 */
export class MalformedBodyError extends Error {
  /** The status of the answer. */
  readonly status = 400;
}

/** Checks the trailer fields of a chunked body ([name, value, …]): the error to fail the body with, if any. */
export function trailerViolation(rawTrailers: readonly string[]): MalformedBodyError | undefined {
  for (let i = 0; i < rawTrailers.length; i += 2) {
    if (FORBIDDEN_TRAILERS.has(rawTrailers[i].toLowerCase())) {
      return new MalformedBodyError(`${rawTrailers[i]} in the trailer section of a chunked body`);
    }
  }
  return undefined;
}
