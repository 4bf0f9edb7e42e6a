/**
 * The HTTP/2 connection preface (RFC 9113 section 3.4): the 24 bytes an HTTP/2 client with prior knowledge opens a
 * connection with, which tell it from an HTTP/1.1 client (no request line begins with them). Read by the h2c gates
 * of node-http (src/http/node/h2c-gate.ts) and bun-listen (src/workers/_bun-protocol-switch.ts).
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** 'h2' for the whole preface, 'h1' for bytes that cannot begin it, undefined for a beginning of it. */
export function prefaceVerdict(bytes: Uint8Array): 'h1' | 'h2' | undefined {
  const length = Math.min(bytes.length, PREFACE.length);
  if (PREFACE.compare(bytes, 0, length, 0, length) !== 0) return 'h1';
  return length === PREFACE.length ? 'h2' : undefined;
}

/** The invalid-request reason for a preface from a peer that may not speak h2c (answered 400). */
export const UNTRUSTED_PREFACE = 'HTTP/2 connection preface from a peer not in --forwarded-allow-ips (h2c is for trusted peers)';

/** The invalid-request reason for bytes that are no preface where only h2c is served (answered 400). */
export const NOT_A_PREFACE = 'not an HTTP/2 connection preface, and --http-protocols has no h1';
