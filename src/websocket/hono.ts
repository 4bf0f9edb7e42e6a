/**
 * `tsgunicorn/hono`: Hono's `upgradeWebSocket` helper and the `websocket` handler for apps served by tsgunicorn,
 * on every runtime and engine (the same API as `hono/bun`'s, which cannot be imported off Bun: its module reads
 * `Bun.write` when it loads). Built on `hono/ws`, Hono's public API for WebSocket adapters:
 *
 *     import { upgradeWebSocket, websocket } from 'tsgunicorn/hono';
 *     app.get('/ws', upgradeWebSocket(() => ({ onMessage: (event, ws) => ws.send(event.data) })));
 *     export default { fetch: app.fetch, websocket };
 *
 * On Bun, `hono/bun`'s own pair works the same way; on deno-serve, `hono/deno`'s helper works too.
 */
import { createWSMessageEvent, defineWebSocketHelper, type WSContext as HonoWSContext, WSContext, type WSEvents, type WSReadyState } from 'hono/ws';
import type { AppWebSocket, UpgradableInfo, WebSocketHandler } from './app-handler.ts';

/** What the helper gives upgrade() as the socket's `data`. */
interface HonoSocketData {
  events: WSEvents<AppWebSocket>;
  url: URL;
  protocol: string;
}

function contextOf(ws: AppWebSocket): HonoWSContext<AppWebSocket> {
  const { url, protocol } = ws.data as HonoSocketData;
  return new WSContext<AppWebSocket>({
    send: (source) => void ws.send(source),
    close: (code, reason) => ws.close(code, reason),
    raw: ws,
    readyState: ws.readyState as WSReadyState,
    url,
    protocol,
  });
}

/**
 * A CloseEvent for Hono's onClose: Node 20 has no global CloseEvent (Node >= 23, Deno and Bun have), so there an
 * Event carries the same fields.
 */
function closeEvent(code: number, reason: string): CloseEvent {
  if (typeof CloseEvent === 'function') return new CloseEvent('close', { code, reason, wasClean: code !== 1006 });
  return Object.assign(new Event('close'), { code, reason, wasClean: code !== 1006 }) as CloseEvent;
}

/** A binary message as Hono hands it on: an ArrayBuffer holding exactly the message. */
function arrayBufferOf(message: Buffer): ArrayBuffer {
  const { buffer, byteOffset, byteLength } = message;
  if (byteOffset === 0 && byteLength === buffer.byteLength) return buffer as ArrayBuffer;
  return buffer.slice(byteOffset, byteOffset + byteLength) as ArrayBuffer;
}

/** Runs one of the app's event listeners; a failure goes to its onError, else on to tsgunicorn's log. */
function dispatch(ws: AppWebSocket, listener: () => unknown): unknown {
  const { events } = ws.data as HonoSocketData;
  const toOnError = (error: unknown) => {
    if (!events.onError) throw error;
    events.onError(Object.assign(new Event('error'), { error }), contextOf(ws));
  };
  try {
    const result = listener();
    return typeof (result as Promise<unknown> | null)?.then === 'function' ? (result as Promise<unknown>).catch(toOnError) : result;
  } catch (error) {
    return toOnError(error);
  }
}

/** Hono's upgradeWebSocket for tsgunicorn: upgrades through the handler's second argument (Hono's `c.env`). */
export const upgradeWebSocket = defineWebSocketHelper<AppWebSocket>((c, events) => {
  const info = c.env as Partial<UpgradableInfo> | undefined;
  if (typeof info?.upgrade !== 'function') {
    throw new TypeError('upgradeWebSocket needs the app served by tsgunicorn with its `websocket` export (README, "WebSocket")');
  }
  // The first subprotocol the client offers is chosen, and named in the 101 as RFC 6455 asks.
  const protocol = c.req.header('sec-websocket-protocol')?.split(',')[0]?.trim() ?? '';
  const data: HonoSocketData = { events, url: new URL(c.req.url), protocol };
  const upgraded = info.upgrade(c.req.raw, { data, headers: protocol ? { 'sec-websocket-protocol': protocol } : undefined });
  // tsgunicorn drops what an upgraded request's handler returns; a Response keeps Hono's router content.
  return upgraded ? new Response(null) : undefined;
});

/** The `websocket` export that goes with upgradeWebSocket: `export default { fetch: app.fetch, websocket }`. */
export const websocket: WebSocketHandler = {
  open(ws) {
    const { events } = ws.data as HonoSocketData;
    if (events.onOpen) return dispatch(ws, () => events.onOpen!(new Event('open'), contextOf(ws)));
  },
  message(ws, message) {
    const { events } = ws.data as HonoSocketData;
    if (!events.onMessage) return;
    const event = createWSMessageEvent(typeof message === 'string' ? message : arrayBufferOf(message));
    return dispatch(ws, () => events.onMessage!(event, contextOf(ws)));
  },
  close(ws, code, reason) {
    const { events } = ws.data as HonoSocketData;
    if (events.onClose) return dispatch(ws, () => events.onClose!(closeEvent(code, reason), contextOf(ws)));
  },
};
