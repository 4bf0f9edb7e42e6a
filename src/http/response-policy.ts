/**
 * The rules every engine applies to the header fields of the app's response (RFC 9110, RFC 9112): hop-by-hop
 * fields belong to the server and are dropped; a field HTTP/1.1 cannot carry is the app's error (a 500, never a
 * split response); a value goes out as latin-1 bytes (one byte per character, U+0000-U+00FF); `Date` is always
 * sent and `Server` only when `--server-header` asks. Each engine's writer applies them in the one pass it makes
 * over the fields anyway; a field that is plain printable ASCII costs one regular-expression test.
 */

/** The hop-by-hop fields (lowercase): the server's own, never passed on from the app. */
export const HOP_BY_HOP_FIELDS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer',
  // No upgrades yet: an Upgrade field would offer a protocol switch the server does not make.
  'upgrade',
]);

/** Whether a field (lowercase name) is hop-by-hop. */
export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP_FIELDS.has(name);
}

/** Anything but printable ASCII: the value needs the closer look of fieldValueError (rare). */
const UNUSUAL_VALUE = /[^\x20-\x7e]/;
/** What no HTTP/1.1 field value may hold: controls other than HTAB (CR, LF, NUL among them), DEL, non-latin-1. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Characters outside ASCII that latin-1 can carry (one byte each). */
const LATIN1_VALUE = /[\x80-\xff]/;
/** An RFC 9110 token, what a field name must be. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A field of the app's response that HTTP/1.1 cannot carry; the engine answers 500 instead of the response. */
export class InvalidResponseFieldError extends Error {
  constructor(name: string, problem: string) {
    super(`invalid response header ${JSON.stringify(name)} from the app: ${problem}`);
  }
}

/** Whether a value is printable ASCII, the common case that needs no other check. */
export function isPlainValue(value: string): boolean {
  return !UNUSUAL_VALUE.test(value);
}

/**
 * Checks a value that is not plain (see isPlainValue): throws InvalidResponseFieldError when HTTP/1.1 cannot
 * carry it; returns whether it holds latin-1 characters beyond ASCII.
 */
export function checkUnusualValue(name: string, value: string): boolean {
  const bad = INVALID_VALUE.exec(value);
  if (bad) {
    const code = bad[0].charCodeAt(0);
    throw new InvalidResponseFieldError(name, code > 0xff
      ? `U+${code.toString(16).toUpperCase().padStart(4, '0')} in its value is not latin-1`
      : `control character 0x${code.toString(16).padStart(2, '0')} in its value`);
  }
  return LATIN1_VALUE.test(value);
}

/**
 * Throws InvalidResponseFieldError for a name that is not a token. The runtime's own Headers only holds tokens, so
 * only the fields of another Headers-like object need it (see fieldsNeedNameCheck).
 */
export function checkFieldName(name: string): void {
  if (!TOKEN.test(name)) throw new InvalidResponseFieldError(name, 'the name is not an HTTP token');
}

/** Whether the names of these fields must be checked: they do not come from the runtime's Headers class. */
export function fieldsNeedNameCheck(headers: Headers): boolean {
  return !(headers instanceof Headers);
}

/** Whether a Connection value holds the `close` option. */
export function hasCloseOption(value: string): boolean {
  return value.length === 5 ? value.toLowerCase() === 'close' : /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(value);
}

let cachedDate = '';
let cachedSecond = 0;

/** The Date header's value now, formatted once per second. */
export function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedDate = new Date(second * 1000).toUTCString();
  }
  return cachedDate;
}

/** Whether HTTP/1.1 can carry a value as it is (printable latin-1, HTAB). */
export function isValidFieldValue(value: string): boolean {
  return !INVALID_VALUE.test(value);
}
