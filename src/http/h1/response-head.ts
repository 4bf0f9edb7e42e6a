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

/** The app's response headers as the server writes them, read in one pass over the Headers. */
export interface AppFields {
  /** The fields passed on as they are, each a CRLF-terminated line (Set-Cookie lines last). */
  lines: string;
  /** The app's Content-Length, if any. */
  contentLength: string | null;
  /** The app's Date, if any. */
  date: string | null;
  /** The app's Connection header asks to close the connection. */
  close: boolean;
}

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

/** Status lines of responses without a statusText of their own, by status. */
const statusLines = new Map<number, string>();

function statusLine(status: number, statusText: string): string {
  if (statusText) return `HTTP/1.1 ${status} ${statusText}\r\n`;
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
    statusLines.set(status, line);
  }
  return line;
}

/** Whether a response with this status to this method never has a body. */
export function isBodyless(method: string, status: number): boolean {
  return method === 'HEAD' || status < 200 || status === 204 || status === 304;
}

/** Reads the app's fields; the ones the server writes itself (framing, Date, Connection) are set apart. */
export function appFields(headers: Headers): AppFields {
  let lines = '';
  let contentLength: string | null = null;
  let date: string | null = null;
  let close = false;
  let cookies = false;
  for (const [name, value] of headers) {
    switch (name) {
      case 'connection':
        close = value.toLowerCase().includes('close');
        break;
      case 'content-length':
        contentLength = value;
        break;
      case 'date':
        date = value;
        break;
      case 'set-cookie':
        cookies = true;
        break;
      case 'keep-alive':
      case 'transfer-encoding':
        break;
      default:
        lines += `${name}: ${value}\r\n`;
    }
  }
  // Set-Cookie cannot be joined with commas (Expires dates hold one): getSetCookie() gives each cookie apart.
  if (cookies) for (const cookie of headers.getSetCookie()) lines += `set-cookie: ${cookie}\r\n`;
  return { lines, contentLength, date, close };
}

/** The response head as latin-1 text, CRLF-terminated. */
export function responseHead(response: Response, fields: AppFields, framing: Framing, close: boolean, http10KeepAlive: boolean): string {
  const { status } = response;
  let head = `${statusLine(status, response.statusText)}${fields.lines}date: ${fields.date ?? httpDate()}\r\n`;
  if (framing.kind === 'length') head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === 'chunked') head += 'transfer-encoding: chunked\r\n';
  else if (framing.kind === 'none' && fields.contentLength !== null && status !== 204 && status >= 200) {
    head += `content-length: ${fields.contentLength}\r\n`;
  }
  if (close) head += 'connection: close\r\n';
  else if (http10KeepAlive) head += 'connection: keep-alive\r\n';
  return `${head}\r\n`;
}
