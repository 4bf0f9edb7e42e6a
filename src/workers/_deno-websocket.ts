/**
 * WebSockets on the deno-serve engine: `info.upgrade(request, { data, headers })` calls `Deno.upgradeWebSocket`
 * on the request Deno.serve gave, hands Deno.serve its 101 response, and shows the app's `websocket` handler the
 * Deno WebSocket as a ServerWebSocket-like object (src/websocket/app-handler.ts). Deno's server WebSocket reads
 * whole messages itself (its limit cannot be set), so a message over --ws-max-message is refused with 1009 after it
 * has arrived; Deno has no event for a drained send buffer, so the app's `drain` is never called here.
 */
import type { Logger } from '../glogging.ts';
import type { RemoteAddress, ServeInfo } from '../http/types.ts';
import { type AppWebSocket, callApp, type UpgradableInfo, type UpgradeOptions, type WebSocketHandler } from '../websocket/app-handler.ts';
import type { WebSocketSessions } from '../websocket/sessions.ts';
import { UPGRADE_ANSWER, UPGRADED_REQUEST_HEADERS, type UpgradedInfo } from '../websocket/upgrade-offer.ts';

interface DenoUpgrade {
  upgradeWebSocket(request: Request, options?: { protocol?: string }): { socket: WebSocket; response: Response };
}

const Deno = (globalThis as unknown as { Deno: DenoUpgrade }).Deno;

/** What the deno-serve engine's WebSockets share. */
export interface DenoWebSocketContext {
  handler: WebSocketHandler;
  maxMessage: number;
  logger: Logger;
  sessions: WebSocketSessions;
}

/** A Deno server WebSocket as the app's handler sees it. */
class DenoServerWebSocket implements AppWebSocket {
  readonly data: unknown;
  readonly remoteAddress: string;
  readonly binaryType = 'nodebuffer';
  private readonly socket: WebSocket;
  private readonly context: DenoWebSocketContext;

  constructor(socket: WebSocket, data: unknown, remoteAddress: string, context: DenoWebSocketContext) {
    this.socket = socket;
    this.data = data;
    this.remoteAddress = remoteAddress;
    this.context = context;
  }

  get readyState(): number {
    return this.socket.readyState;
  }

  send(message: string | ArrayBufferLike | ArrayBufferView): number {
    const { socket, context } = this;
    if (socket.readyState !== WebSocket.OPEN) return 0;
    if (socket.bufferedAmount > context.maxMessage) {
      context.logger.warning(`WebSocket client ip=${this.remoteAddress || '-'} left more than ${context.maxMessage} ` +
        'bytes unread (--ws-max-message); connection closed');
      socket.close(1008, 'Too much unread');
      return 0;
    }
    socket.send(message as string | ArrayBufferView<ArrayBuffer>);
    if (socket.bufferedAmount > 0) return -1;
    return typeof message === 'string' ? Buffer.byteLength(message) : message.byteLength;
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  getBufferedAmount(): number {
    return this.socket.bufferedAmount;
  }
}

/** Wires a Deno WebSocket's events to the app's handler. */
function serveSocket(socket: WebSocket, ws: DenoServerWebSocket, context: DenoWebSocketContext): void {
  const { handler, maxMessage, logger, sessions } = context;
  const reportError = (error: unknown) => logger.exception('Error in the app\'s WebSocket handler', error);
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => {
    sessions.add(ws);
    if (handler.open) callApp(reportError, () => handler.open!(ws));
  };
  socket.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    const { data } = event;
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (size > maxMessage) {
      logger.warning(`WebSocket message from ip=${ws.remoteAddress || '-'} is larger than --ws-max-message (${maxMessage} bytes)`);
      socket.close(1009, 'Message Too Big');
      return;
    }
    if (handler.message) callApp(reportError, () => handler.message!(ws, typeof data === 'string' ? data : Buffer.from(data)));
  };
  socket.onclose = (event: CloseEvent) => {
    sessions.delete(ws);
    if (handler.close) callApp(reportError, () => handler.close!(ws, event.code, event.reason));
  };
  socket.onerror = () => logger.debug(`WebSocket error, ip=${ws.remoteAddress || '-'}`);
}

/** The handler's second argument on deno-serve when the app serves WebSockets: Deno's info plus upgrade(). */
export class DenoUpgradableInfo implements UpgradableInfo {
  private readonly base: ServeInfo;
  private readonly request: Request;
  private readonly context: DenoWebSocketContext;
  /** Deno.serve's `completed`, passed on. */
  readonly completed: Promise<void>;
  /** The client's address, kept once read: Deno's info can no longer tell it once the request is upgraded. */
  private address?: RemoteAddress;

  constructor(base: ServeInfo & { completed: Promise<void> }, request: Request, context: DenoWebSocketContext) {
    this.base = base;
    this.request = request;
    this.context = context;
    this.completed = base.completed;
  }

  get remoteAddr(): RemoteAddress {
    return this.address ??= this.base.remoteAddr;
  }

  upgrade(_request: Request, options?: UpgradeOptions): boolean {
    if (this.request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return false;
    const { hostname } = this.remoteAddr;
    // Deno's request can no longer tell its headers once upgraded: the access log gets a copy.
    const headers = this.context.logger.accessEnabled ? new Headers(this.request.headers) : undefined;
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(this.request);
    } catch {
      // Not a valid handshake (Deno checks the method, Connection, the key and the version).
      return false;
    }
    const { socket, response } = upgraded;
    if (options?.headers) new Headers(options.headers).forEach((value, name) => response.headers.set(name, value));
    serveSocket(socket, new DenoServerWebSocket(socket, options?.data, hostname, this.context), this.context);
    (this as UpgradedInfo)[UPGRADE_ANSWER] = response;
    (this as UpgradedInfo)[UPGRADED_REQUEST_HEADERS] = headers;
    return true;
  }
}
