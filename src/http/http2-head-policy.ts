/**
 * The head rules of src/http/head-policy.ts that HTTP/2 leaves to the server, for a request's regular fields (its
 * pseudo-headers aside): a method a Fetch Request cannot have (501), a repeated Host, Content-Length or
 * Content-Type (400), an expectation other than `100-continue` (417). node:http2 refuses the rest itself:
 * connection-specific fields, a `TE` other than `trailers`, missing or repeated pseudo-headers (RFC 9113 section
 * 8.2.2 and 8.3), and there is no Transfer-Encoding to check (a stream frames its body in DATA frames).
 */
import { type FetchFieldSummary, fetchPolicyViolation, type PolicyViolation } from './head-policy.ts';
import { mergedField } from './limits.ts';

/** Checks an HTTP/2 request's method and regular fields as a flat [name, value, …] list. */
export function http2HeadViolation(method: string, rawHeaders: readonly string[]): PolicyViolation | undefined {
  const fields: FetchFieldSummary = { host: undefined, contentLength: undefined, expect: undefined, contentTypes: 0 };
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // HTTP/2 field names are lower case (RFC 9113 section 8.2.1).
    if (name === 'host') fields.host = mergedField(fields.host, rawHeaders[i + 1]);
    else if (name === 'content-length') fields.contentLength = mergedField(fields.contentLength, rawHeaders[i + 1]);
    else if (name === 'content-type') fields.contentTypes++;
    else if (name === 'expect') fields.expect = rawHeaders[i + 1];
  }
  return fetchPolicyViolation(method, fields);
}
