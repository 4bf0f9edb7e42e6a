/**
 * The Deno.serve engine: Deno's own HTTP server on a SO_REUSEPORT socket per TCP bind, opened by the worker
 * itself (Deno.serve takes no fd and no listener). Needs `--unstable-net`, which the Deno runtime adds when it
 * spawns workers. A graceful stop is `shutdown()`: no new connections, idle keep-alive connections (and accepted
 * ones it has not read a request from) closed, in-flight requests finish (with `Connection: close`); it comes at
 * once, or after serving on while a client may reuse an idle connection (src/workers/_native-drain.ts).
 */
import type { ServeInfo } from '../http/types.ts';
import type { WorkerSocket } from '../messages.ts';
import { tlsOptionsFrom } from '../tls-options.ts';
import type { EngineContext, EngineFactory, ServingEngine } from './base.ts';
import { nativeHandler, type NativeServerRules } from './_native.ts';
import { NativeDrain } from './_native-drain.ts';
import { type DenoWebSocketContext, DenoUpgradableInfo } from './_deno-websocket.ts';
import { WebSocketSessions } from '../websocket/sessions.ts';

/** The slots of Deno's Response and Request that hold their inner objects (found once, on probes). */
const innerResponseSlot = Object.getOwnPropertySymbols(new Response('')).find((slot) => slot.description === 'response');
const innerRequestSlot = Object.getOwnPropertySymbols(new Request('http://localhost/')).find((slot) => slot.description === 'request');

/**
 * Visits the fields of a Deno Request or Response in its inner object's `headerList` of [name, value] pairs, as
 * Headers.forEach would (names in lower case: a request's list keeps the client's case); falls back to `headers`
 * if the list is not found.
 */
function forEachInnerField(message: Request | Response, slot: symbol | undefined, visit: (value: string, name: string) => void): void {
  const list = slot && (message as unknown as Record<symbol, { headerList?: unknown }>)[slot]?.headerList;
  if (!Array.isArray(list)) return message.headers.forEach(visit);
  for (let i = 0; i < list.length; i++) visit(list[i][1], (list[i][0] as string).toLowerCase());
}

/**
 * Visits the fields of a Response in the list Deno.serve sends them from: reading `headers` instead would make
 * the Headers object of a Response that has none yet, 0.5 µs, a tenth of what Deno.serve spends on a request.
 */
const forEachDenoField = (response: Response, visit: (value: string, name: string) => void) =>
  forEachInnerField(response, innerResponseSlot, visit);

/**
 * Visits the fields of a request as Deno.serve received them (repeats not merged), read from the connection on
 * each access of the inner `headerList`. Measured in the handler on a request of 7 fields: 0.85 µs, where `request.headers.forEach` takes 2.3 µs (the Headers object, then the sorting and
 * merging Fetch asks of its iteration); an app that reads `headers` afterwards pays its own 0.4 µs read.
 */
const forEachDenoRequestField = (request: Request, visit: (value: string, name: string) => void) =>
  forEachInnerField(request, innerRequestSlot, visit);

/**
 * Deno.serve's requests are read from its own field list. It panics (the whole worker dies) on a control
 * character in a response header value, which Fetch's Headers allow, and passes hop-by-hop fields on; HEAD it
 * answers as it should.
 */
const DENO_SERVE_RULES: NativeServerRules = { forEachField: forEachDenoField, forEachRequestField: forEachDenoRequestField, fixHead: false };

interface DenoServeInfo extends ServeInfo {
  /** Settles once the response has been sent (or failed). */
  completed: Promise<void>;
}

interface DenoHttpServer {
  shutdown(): Promise<void>;
}

interface DenoServe {
  serve(
    options: {
      hostname: string; port: number; reusePort: boolean; cert?: string; key?: string; onListen(): void; onError(error: unknown): Response;
    },
    handler: (request: Request, info: DenoServeInfo) => Response | Promise<Response>,
  ): DenoHttpServer;
}

const Deno = (globalThis as unknown as { Deno: DenoServe }).Deno;

class DenoServeEngine implements ServingEngine {
  private readonly context: EngineContext;
  private readonly servers: DenoHttpServer[] = [];
  private readonly webSockets = new WebSocketSessions();
  private stopped?: Promise<unknown>;
  private readonly drainTiming: NativeDrain;

  constructor(context: EngineContext) {
    this.context = context;
    this.drainTiming = new NativeDrain(context.hooks, context.settings, context.logger);
  }

  async listen(sockets: WorkerSocket[]): Promise<void> {
    const handle = nativeHandler(this.context, DENO_SERVE_RULES);
    const { logger, websocket, settings } = this.context;
    const webSocketContext: DenoWebSocketContext | undefined = websocket &&
      { handler: websocket, maxMessage: settings.wsMaxMessage, logger, sessions: this.webSockets };
    // Deno's `completed` makes a promise (and settles it) for every request that reads it: it is read only where
    // the access log or the metrics wait for it (0.15-0.4 µs per request of Deno.serve's ~5.5, hello world).
    const timed = this.context.hooks.timed;
    // With a `websocket` export, each request's info gets upgrade() (an object per request); without, Deno's own.
    const serve = webSocketContext
      ? (request: Request, info: DenoServeInfo) => handle(request, new DenoUpgradableInfo(info, request, webSocketContext), info.completed)
      : (request: Request, info: DenoServeInfo) => handle(request, info, timed ? info.completed : undefined);
    // Deno.serve takes a certificate and key only (the README's TLS section says what it cannot do).
    const tls = tlsOptionsFrom(settings);
    for (const socket of sockets) {
      if (socket.kind !== 'reuse-port') throw new Error('Deno.serve cannot serve an inherited fd');
      await new Promise<void>((resolve, reject) => {
        try {
          this.servers.push(Deno.serve({
            hostname: socket.address.host,
            port: socket.address.port,
            reusePort: true,
            ...(tls ? { cert: tls.cert, key: tls.key } : {}),
            onListen: resolve,
            onError(error) {
              logger.exception('Error in Deno.serve', error);
              return new Response('Internal Server Error\n', { status: 500 });
            },
          }, serve));
        } catch (error) {
          reject(error);
        }
      });
    }
  }

  /** Shuts down once no client may be reusing an idle connection (NativeDrain); requests in flight finish. */
  stopAccepting(): void {
    this.stopped ??= this.drainTiming.stopWhenIdle(() => Promise.all(this.servers.map((server) => server.shutdown())));
  }

  /** Also sends every open WebSocket close 1001 and waits for them. */
  async drain(): Promise<void> {
    await Promise.all([this.stopped, this.webSockets.drain()]);
  }
}

/** Creates the Deno.serve engine. */
export const createDenoServeEngine: EngineFactory = (context) => new DenoServeEngine(context);
