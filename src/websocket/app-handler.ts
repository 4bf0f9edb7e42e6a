/**
 * The app-facing WebSocket contract, the same on every engine and shaped like Bun's: the handler's second argument
 * has `upgrade(request, { data, headers })` (Bun's `server.upgrade`), and the app module exports a `websocket`
 * handler object next to `fetch` (Bun's `open`/`message`/`close`/`drain`) that receives a ServerWebSocket-like
 * object. That is what `hono/bun`'s `upgradeWebSocket` helper calls, so it works on every runtime and engine.
 */
import type { ServeInfo } from '../http/types.ts';

/** What a WebSocket looks like to the app's handler (the part of Bun's ServerWebSocket every engine provides). */
export interface AppWebSocket {
  /** The `data` given to `upgrade()`. */
  readonly data: unknown;
  /** 0 connecting, 1 open, 2 closing, 3 closed (WebSocket's values). */
  readonly readyState: number;
  /** The client's address. */
  readonly remoteAddress: string;
  /** Sends a text (string) or binary message: bytes sent, -1 when queued behind backpressure, 0 when dropped. */
  send(message: string | ArrayBufferLike | ArrayBufferView, compress?: boolean): number;
  /** Starts the closing handshake with `code` (1000) and `reason`. */
  close(code?: number, reason?: string): void;
  /** Bytes written and not yet taken by the client. */
  getBufferedAmount(): number;
}

/** The `websocket` export of an app module (Bun's WebSocketHandler; `message` is the only one required by Bun). */
export interface WebSocketHandler {
  open?(ws: AppWebSocket): unknown;
  message?(ws: AppWebSocket, message: string | Buffer): unknown;
  close?(ws: AppWebSocket, code: number, reason: string): unknown;
  /** The socket has taken everything queued after a send() returned -1. */
  drain?(ws: AppWebSocket): unknown;
  ping?(ws: AppWebSocket, data: Buffer): unknown;
  pong?(ws: AppWebSocket, data: Buffer): unknown;
}

/** What the app passes to `upgrade()`, as Bun's server takes it. */
export interface UpgradeOptions {
  /** Handed to the socket as `ws.data`. */
  data?: unknown;
  /** Extra fields of the 101 response (a chosen Sec-WebSocket-Protocol, Set-Cookie). */
  headers?: HeadersInit;
}

/** The second argument of a handler whose request can be upgraded. */
export interface UpgradableInfo extends ServeInfo {
  /** Takes the request over as a WebSocket once the handler returns; false when it is no WebSocket handshake. */
  upgrade(request: Request, options?: UpgradeOptions): boolean;
}

/** The app's `websocket` export: an object with a `message`, `open` or `close` function, else undefined. */
export function websocketHandlerOf(exported: unknown): WebSocketHandler | undefined {
  const candidate = (exported as { websocket?: unknown } | null | undefined)?.websocket as Record<string, unknown> | undefined;
  if (!candidate || typeof candidate !== 'object') return undefined;
  const handles = ['open', 'message', 'close'].some((name) => typeof candidate[name] === 'function');
  return handles ? candidate as WebSocketHandler : undefined;
}

/**
 * Calls one of the app's WebSocket callbacks: a throw or a rejection is logged through `onError` and the
 * connection goes on (as Bun's server does), the worker never crashes.
 */
export function callApp(onError: (error: unknown) => void, callback: () => unknown): void {
  try {
    const result = callback();
    if (typeof (result as Promise<unknown> | null)?.then === 'function') (result as Promise<unknown>).catch(onError);
  } catch (error) {
    onError(error);
  }
}
