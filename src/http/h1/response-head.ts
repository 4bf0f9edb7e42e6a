/**
 * The head of an HTTP/1.1 response: status line, the app's headers (under the rules of
 * src/http/response-policy.ts), and the headers the server owns (Content-Length or chunked, Date, Connection,
 * Server).
 */
import { STATUS_CODES } from 'node:http';
import {
  checkFieldName, checkUnusualValue, fieldsNeedNameCheck, hasCloseOption, httpDate, InvalidResponseFieldError,
  isHopByHop, isPlainValue, isValidFieldValue,
} from '../response-policy.ts';

/** How the body of a response is framed on the wire. */
export type Framing =
  /** No body at all (HEAD, 1xx, 204, 304): the app's Content-Length, if any, is kept as it is. */
  | { kind: 'none' }
  /** Exactly this many bytes (for HEAD: the length the body would have). */
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
  /** The app set a Server. */
  server: boolean;
}

/** What the server adds to every head beside the app's fields. */
export interface HeadOptions {
  /** `--server-header`: sent as `Server` unless the app set one. */
  serverHeader: string | null;
}

/** Status lines of responses without a statusText of their own, by status. */
const statusLines = new Map<number, string>();

/** Throws an InvalidResponseFieldError for a reason phrase HTTP/1.1 cannot carry. */
export function checkStatusText(statusText: string): void {
  // A Response checks its statusText; a Response-like object from elsewhere may not have.
  if (statusText && !isValidFieldValue(statusText)) throw new InvalidResponseFieldError('statusText', 'a control or non-latin-1 character');
}

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

/** A value of the app's, checked for the head. */
function checked(name: string, value: string): string {
  if (!isPlainValue(value)) checkUnusualValue(name, value);
  return value;
}

/** A field line of the head, its value checked first. */
function fieldLine(name: string, value: string): string {
  return `${name}: ${checked(name, value)}\r\n`;
}

/**
 * Reads the app's fields: hop-by-hop ones are dropped, the ones the server writes itself (framing, Date,
 * Connection) are set apart. Throws InvalidResponseFieldError for a field HTTP/1.1 cannot carry.
 */
export function appFields(headers: Headers): AppFields {
  const checkNames = fieldsNeedNameCheck(headers);
  let lines = '';
  let contentLength: string | null = null;
  let date: string | null = null;
  let close = false;
  let cookies = false;
  let server = false;
  for (const [name, value] of headers) {
    if (checkNames) checkFieldName(name);
    switch (name) {
      case 'connection':
        close = hasCloseOption(value);
        break;
      case 'content-length':
        contentLength = checked(name, value);
        break;
      case 'date':
        date = checked(name, value);
        break;
      case 'set-cookie':
        cookies = true;
        break;
      case 'server':
        server = true;
        lines += fieldLine(name, value);
        break;
      default:
        if (!isHopByHop(name)) lines += fieldLine(name, value);
    }
  }
  // Set-Cookie cannot be joined with commas (Expires dates hold one): getSetCookie() gives each cookie apart.
  if (cookies) for (const cookie of headers.getSetCookie()) lines += fieldLine('set-cookie', cookie);
  return { lines, contentLength, date, close, server };
}

/** The response head as latin-1 text, CRLF-terminated. */
export function responseHead(
  response: Response, fields: AppFields, options: HeadOptions, framing: Framing, close: boolean, http10KeepAlive: boolean,
): string {
  const { status } = response;
  let head = `${statusLine(status, response.statusText)}${fields.lines}date: ${fields.date ?? httpDate()}\r\n`;
  if (options.serverHeader !== null && !fields.server) head += `server: ${options.serverHeader}\r\n`;
  if (framing.kind === 'length') head += `content-length: ${framing.length}\r\n`;
  else if (framing.kind === 'chunked') head += 'transfer-encoding: chunked\r\n';
  else if (framing.kind === 'none' && fields.contentLength !== null && status !== 204 && status >= 200) {
    head += `content-length: ${fields.contentLength}\r\n`;
  }
  if (close) head += 'connection: close\r\n';
  else if (http10KeepAlive) head += 'connection: keep-alive\r\n';
  return `${head}\r\n`;
}
