/**
 * The server side of the WebSocket opening handshake (RFC 6455 §4.2): which requests are one, and the 101
 * response that completes it, for the engines that write their own responses (node-http, bun-listen).
 */
import { createHash } from 'node:crypto';

/** The GUID RFC 6455 §1.3 appends to the client's key. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A field's value as a request gives it (null when absent). */
type FieldReader = (name: string) => string | null;

/** Whether a comma-separated field lists `token` (case-insensitive). */
function listsToken(value: string | null, token: string): boolean {
  if (!value) return false;
  return value.split(',').some((item) => item.trim().toLowerCase() === token);
}

/**
 * The client's Sec-WebSocket-Key when the request is a WebSocket opening handshake (GET, `Upgrade: websocket`,
 * `Connection: upgrade`, version 13, a key of 16 bytes in base64); undefined otherwise.
 */
export function handshakeKeyOf(method: string, field: FieldReader): string | undefined {
  if (method !== 'GET' || !listsToken(field('upgrade'), 'websocket') || !listsToken(field('connection'), 'upgrade')) return undefined;
  if (field('sec-websocket-version')?.trim() !== '13') return undefined;
  const key = field('sec-websocket-key')?.trim();
  return key && Buffer.from(key, 'base64').byteLength === 16 ? key : undefined;
}

/** The Sec-WebSocket-Accept value for a client's key. */
export function acceptValueFor(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/** The whole 101 response head for a handshake, with the app's extra fields. */
export function switchingProtocolsHead(key: string, headers: HeadersInit | undefined): string {
  let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptValueFor(key)}\r\n`;
  if (headers) new Headers(headers).forEach((value, name) => (head += `${name}: ${value}\r\n`));
  return `${head}\r\n`;
}
