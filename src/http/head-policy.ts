/**
 * The request-head rules that llhttp leaves to its caller, as Gunicorn's parser applies them: one Host and one
 * Content-Type at most, no chunked body on HTTP/1.0, `*` as a target only for OPTIONS, HTTP/1.0 or 1.1 only;
 * and, where Gunicorn is lenient, RFC 9112's Host on every HTTP/1.1 request (node:http requires it too).
 * Native servers (Deno.serve, Bun.serve) parse with their own rules.
 */

/** A head that breaks a rule: the status to answer (400, 505) and the reason to log. */
export interface PolicyViolation {
  status: 400 | 505;
  reason: string;
}

/** Checks a head parsed off the wire: method, target, HTTP version and fields as a flat [name, value, …] list. */
export function headPolicyViolation(
  method: string, target: string, major: number, minor: number, rawHeaders: readonly string[],
): PolicyViolation | undefined {
  if (major !== 1 || minor > 1) return { status: 505, reason: `unsupported HTTP version ${major}.${minor}` };
  if (target === '*' && method !== 'OPTIONS') return { status: 400, reason: `target * with ${method}` };
  let hosts = 0;
  let contentTypes = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (name.length === 12 && name.toLowerCase() === 'content-type') contentTypes++;
    else if (minor === 0 && name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      return { status: 400, reason: 'Transfer-Encoding on an HTTP/1.0 request' };
    }
  }
  if (hosts > 1) return { status: 400, reason: 'more than one Host header' };
  if (hosts === 0 && minor === 1) return { status: 400, reason: 'HTTP/1.1 request without Host (RFC 9112 section 3.2)' };
  if (contentTypes > 1) return { status: 400, reason: 'more than one Content-Type header' };
  return undefined;
}
