/**
 * The head of an HTTP/1.1 response: status line, the app's headers, and the framing and connection headers the
 * server owns (Content-Length or chunked, Date, Connection).
 */
import { STATUS_CODES } from 'node:http';

/** How the body of a response is framed on the wire. */
export type Framing =
  /** No body at all (HEAD, 1xx, 204, 304): the app's Content-Length, if any, is kept as it is. */
  | { kind: 'none' }
  /** Exactly this many bytes. */
  | { kind: 'length'; length: number }
  /** Chunked transfer coding (HTTP/1.1 clients). */
  | { kind: 'chunked' }
  /** Bytes until the connection closes (HTTP/1.0 clients, length unknown). */
  | { kind: 'close-delimited' };

/** The fields the server writes itself, whatever the app's Response says. */
const SERVER_FIELDS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date', 'set-cookie']);

let cachedDate = '';
let cachedSecond = 0;

/** The Date header's value, formatted once per second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedDate = new Date(second * 1000).toUTCString();
  }
  return cachedDate;
}

/** Whether a response with this status to this method never has a body. */
export function isBodyless(method: string, status: number): boolean {
  return method === 'HEAD' || status < 200 || status === 204 || status === 304;
}

/** The response head as latin-1 text, CRLF-terminated. */
export function responseHead(response: Response, framing: Framing, close: boolean, http10KeepAlive: boolean): string {
  const { status } = response;
  let head = `HTTP/1.1 ${status} ${response.statusText || STATUS_CODES[status] || ''}\r\n`;
  let appLength: string | null = null;
  let date: string | null = null;
  for (const [name, value] of response.headers) {
    if (!SERVER_FIELDS.has(name)) head += `${name}: ${value}\r\n`;
    else if (name === 'content-length') appLength = value;
    else if (name === 'date') date = value;
  }
  for (const cookie of response.headers.getSetCookie()) head += `set-cookie: ${cookie}\r\n`;
  head += `date: ${date ?? httpDate()}\r\n`;
  if (framing.kind === 'length') head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === 'chunked') head += 'transfer-encoding: chunked\r\n';
  else if (framing.kind === 'none' && appLength !== null && status !== 204 && status >= 200) head += `content-length: ${appLength}\r\n`;
  if (close) head += 'connection: close\r\n';
  else if (http10KeepAlive) head += 'connection: keep-alive\r\n';
  return `${head}\r\n`;
}
