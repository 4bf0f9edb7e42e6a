/**
 * The Deno.serve engine: Deno's own HTTP server on a SO_REUSEPORT socket per TCP bind, opened by the worker
 * itself (Deno.serve takes no fd and no listener). Needs `--unstable-net`, which the Deno runtime adds when it
 * spawns workers. A graceful stop serves on for a keep-alive timeout (with `Connection: close`), then is
 * `shutdown()`: no new connections, in-flight requests finish.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServeInfo } from '../http/types.ts';
import type { WorkerSocket } from '../messages.ts';
import type { EngineContext, EngineFactory, ServingEngine } from './base.ts';
import { nativeHandler, nativeStopDelayMs } from './_native.ts';
import type { NativeResponseRules } from './_native-response.ts';

/** The slot of Deno's Response that holds its inner response (found once, on a probe; undefined elsewhere). */
const innerResponseSlot = Object.getOwnPropertySymbols(new Response('')).find((slot) => slot.description === 'response');

/**
 * Visits the fields of a Response in the list Deno.serve sends them from (its inner response's `headerList` of
 * [name, value] pairs): reading `headers` instead would make the Headers object of a Response that has none yet,
 * 0.5 µs, a tenth of what Deno.serve spends on a request. Falls back to `headers` if the list is not found.
 */
function forEachDenoField(response: Response, visit: (value: string, name: string) => void): void {
  const list = innerResponseSlot && (response as unknown as Record<symbol, { headerList?: unknown }>)[innerResponseSlot]?.headerList;
  if (!Array.isArray(list)) return response.headers.forEach(visit);
  for (const [name, value] of list as [string, string][]) visit(value, name);
}

/**
 * Deno.serve panics (the whole worker dies) on a control character in a header value, which Fetch's Headers
 * allow, and passes hop-by-hop fields on; HEAD it answers as it should.
 */
const DENO_SERVE_RULES: NativeResponseRules = { forEachField: forEachDenoField, fixHead: false };

interface DenoServeInfo extends ServeInfo {
  /** Settles once the response has been sent (or failed). */
  completed: Promise<void>;
}

interface DenoHttpServer {
  shutdown(): Promise<void>;
}

interface DenoServe {
  serve(
    options: { hostname: string; port: number; reusePort: boolean; onListen(): void; onError(error: unknown): Response },
    handler: (request: Request, info: DenoServeInfo) => Response | Promise<Response>,
  ): DenoHttpServer;
}

const Deno = (globalThis as unknown as { Deno: DenoServe }).Deno;

class DenoServeEngine implements ServingEngine {
  private readonly context: EngineContext;
  private readonly servers: DenoHttpServer[] = [];
  private stopped?: Promise<unknown>;

  constructor(context: EngineContext) {
    this.context = context;
  }

  async listen(sockets: WorkerSocket[]): Promise<void> {
    const handle = nativeHandler(this.context, true, DENO_SERVE_RULES);
    const { logger } = this.context;
    for (const socket of sockets) {
      if (socket.kind !== 'reuse-port') throw new Error('Deno.serve cannot serve an inherited fd');
      await new Promise<void>((resolve, reject) => {
        try {
          this.servers.push(Deno.serve({
            hostname: socket.address.host,
            port: socket.address.port,
            reusePort: true,
            onListen: resolve,
            onError(error) {
              logger.exception('Error in Deno.serve', error);
              return new Response('Internal Server Error\n', { status: 500 });
            },
          }, (request, info) => handle(request, info, info.completed)));
        } catch (error) {
          reject(error);
        }
      });
    }
  }

  /** Serves on for nativeStopDelayMs() (Deno.serve closes idle keep-alive connections at once), then shuts down. */
  stopAccepting(): void {
    this.stopped ??= sleep(nativeStopDelayMs(this.context.settings)).then(() => Promise.all(this.servers.map((server) => server.shutdown())));
  }

  async drain(): Promise<void> {
    await this.stopped;
  }
}

/** Creates the Deno.serve engine. */
export const createDenoServeEngine: EngineFactory = (context) => new DenoServeEngine(context);
