/**
 * The Bun.serve engine: Bun's own HTTP server on a SO_REUSEPORT socket per TCP bind, opened by the worker
 * itself (Bun.serve ignores an fd). A graceful stop is `stop()`: no new connections, idle keep-alive connections
 * closed, in-flight requests finish (with `Connection: close`); it comes at once, or after serving on while a
 * client may reuse an idle connection (src/workers/_native-drain.ts).
 */
import type { RemoteAddress, ServeInfo } from '../http/types.ts';
import type { WorkerSocket } from '../messages.ts';
import { durationsOf } from '../settings.ts';
import { tlsOptionsFrom } from '../tls-options.ts';
import type { EngineContext, EngineFactory, ServingEngine } from './base.ts';
import { type BunTlsOptions, bunTlsOptions } from './_bun-tls.ts';
import { nativeHandler, type NativeServerRules } from './_native.ts';
import { NativeDrain } from './_native-drain.ts';
import { type AppWebSocket, type UpgradeOptions, type WebSocketHandler } from '../websocket/app-handler.ts';
import { WebSocketSessions } from '../websocket/sessions.ts';
import { UPGRADE_ANSWER, type UpgradedInfo } from '../websocket/upgrade-offer.ts';

/**
 * Visits a Bun.serve request's fields through Bun's `headers.toJSON()` (repeats merged as Headers merges them,
 * Set-Cookie as a list), walked with `Object.keys` rather than `for…in`: measured in the handler (p25, the
 * Headers already made), 0.25 µs against 0.51 µs for `for…in` and 0.6 µs for `headers.forEach` on a request of
 * 1 field, 0.88 against 1.12 and 1.0 µs on one of 7. Making the Headers costs another 0.5 µs, which an app
 * reading them reuses.
 */
function forEachBunRequestField(request: Request, visit: (value: string, name: string) => void): void {
  const fields = (request.headers as unknown as { toJSON(): Record<string, string | string[]> }).toJSON();
  const names = Object.keys(fields);
  for (let i = 0; i < names.length; i++) {
    const value = fields[names[i]];
    if (typeof value === 'string') visit(value, names[i]);
    else for (const each of value) visit(each, names[i]);
  }
}

/**
 * Bun.serve's requests are read through `toJSON()`. It sends a control character in a header value as it is
 * and passes hop-by-hop fields on; its HEAD responses have no Date, and a stream body's declared Content-Length
 * becomes `Transfer-Encoding: chunked`.
 */
const BUN_SERVE_RULES: NativeServerRules = { forEachRequestField: forEachBunRequestField, fixHead: true };

interface BunServer {
  stop(closeActiveConnections?: boolean): Promise<void>;
  requestIP(request: Request): { address: string; port: number } | null;
  timeout(request: Request, seconds: number): void;
  upgrade(request: Request, options?: UpgradeOptions): boolean;
  readonly url: URL;
}

/** Bun.serve's `websocket` option: the app's handler plus the limits. */
interface BunWebSocketOptions extends WebSocketHandler {
  message(ws: AppWebSocket, message: string | Buffer): unknown;
  maxPayloadLength: number;
  backpressureLimit: number;
  closeOnBackpressureLimit: boolean;
}

interface BunServe {
  serve(options: {
    hostname: string;
    port: number;
    reusePort: boolean;
    idleTimeout: number;
    tls?: BunTlsOptions;
    fetch(request: Request, server: BunServer): Response | Promise<Response>;
    websocket?: BunWebSocketOptions;
  }): BunServer;
}

const Bun = (globalThis as unknown as { Bun: BunServe }).Bun;

/** Bun's idleTimeout is whole seconds, 1 to 255. */
const MAX_IDLE_TIMEOUT_S = 255;

/** The handler's second argument; the client's address is looked up only if the handler asks. */
class BunServeInfo implements ServeInfo {
  private readonly server: BunServer;
  private readonly request: Request;
  /** The client's address, kept by upgrade(): Bun's requestIP() no longer tells it once the request is upgraded. */
  private address?: RemoteAddress;

  constructor(server: BunServer, request: Request) {
    this.server = server;
    this.request = request;
  }

  get remoteAddr(): RemoteAddress {
    if (this.address) return this.address;
    const ip = this.server.requestIP(this.request);
    return { transport: 'tcp', hostname: ip?.address ?? '', port: ip?.port ?? 0 };
  }

  /**
   * Bun's own upgrade, of the request Bun.serve gave (the app may hold a copy: with --request-timeout, or one
   * without Host); Bun throws when the app has no `websocket` export.
   */
  upgrade(_request: Request, options?: UpgradeOptions): boolean {
    this.address = this.remoteAddr;
    const upgraded = this.server.upgrade(this.request, options);
    if (upgraded) (this as UpgradedInfo)[UPGRADE_ANSWER] = null;
    return upgraded;
  }
}

/**
 * Bun.serve's `websocket` option for the app's handler: Bun's own WebSockets, with --ws-max-message as the
 * message limit (Bun closes with 1009 past it) and as the most bytes a client may leave unread (then Bun closes
 * the connection), and every open socket in `sessions` for the drain.
 */
function bunWebSocketOptions(handler: WebSocketHandler, maxMessage: number, sessions: WebSocketSessions): BunWebSocketOptions {
  return {
    ...handler,
    message: (ws, message) => handler.message?.(ws, message),
    open(ws) {
      sessions.add(ws);
      return handler.open?.(ws);
    },
    close(ws, code, reason) {
      sessions.delete(ws);
      return handler.close?.(ws, code, reason);
    },
    maxPayloadLength: maxMessage,
    backpressureLimit: maxMessage,
    closeOnBackpressureLimit: true,
  };
}

class BunServeEngine implements ServingEngine {
  private readonly context: EngineContext;
  private readonly servers: BunServer[] = [];
  private readonly webSockets = new WebSocketSessions();
  private stopped?: Promise<unknown>;
  private readonly drainTiming: NativeDrain;

  constructor(context: EngineContext) {
    this.context = context;
    this.drainTiming = new NativeDrain(context.hooks, context.settings, context.logger);
  }

  async listen(sockets: WorkerSocket[]): Promise<void> {
    const handle = nativeHandler(this.context, BUN_SERVE_RULES);
    const keepAliveS = Math.ceil(durationsOf(this.context.settings).keepAliveMs / 1000);
    const { websocket, settings } = this.context;
    const websocketOptions = websocket && bunWebSocketOptions(websocket, settings.wsMaxMessage, this.webSockets);
    const tls = tlsOptionsFrom(this.context.settings);
    for (const socket of sockets) {
      if (socket.kind !== 'reuse-port') throw new Error('Bun.serve cannot serve an inherited fd');
      this.servers.push(Bun.serve({
        hostname: socket.address.host,
        port: socket.address.port,
        reusePort: true,
        idleTimeout: Math.min(Math.max(keepAliveS, 1), MAX_IDLE_TIMEOUT_S),
        websocket: websocketOptions,
        ...(tls ? { tls: bunTlsOptions(tls) } : {}),
        fetch(request, server) {
          // Bun's idleTimeout would also cut a slow handler or a pause in a streamed body: requests are bounded by
          // the worker's --timeout instead. The connection keeps no idle timeout afterwards (README).
          server.timeout(request, 0);
          // Bun.serve gives a request without Host (HTTP/1.0 allows that) a bare path as its URL, which `new URL()`
          // cannot parse and the request-line limit cannot measure: it gets the server's own origin.
          const appRequest = request.url.charCodeAt(0) === 47 /* / */ ? new Request(server.url.origin + request.url, request) : request;
          return handle(appRequest, new BunServeInfo(server, request));
        },
      }));
    }
  }

  /** Stops once no client may be reusing an idle connection (NativeDrain); requests in flight finish. */
  stopAccepting(): void {
    this.stopped ??= this.drainTiming.stopWhenIdle(() => Promise.all(this.servers.map((server) => server.stop())));
  }

  /** Also sends every open WebSocket close 1001 and waits for them. */
  async drain(): Promise<void> {
    await Promise.all([this.stopped, this.webSockets.drain()]);
  }
}

/** Creates the Bun.serve engine. */
export const createBunServeEngine: EngineFactory = (context) => new BunServeEngine(context);
