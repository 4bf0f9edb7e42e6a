/**
 * The node:http engine: one http.Server per socket, serving the Fetch handler through the node:http adapter.
 * An inherited fd is served the way the runtime allows (src/runtime/); a reuse-port address (Node >= 22.12)
 * with `listen({ reusePort })`. Draining lets in-flight requests finish and closes quiet connections.
 */
import http from 'node:http';
import net from 'node:net';
import { ConnectionTracker } from '../http/connections.ts';
import { createRequestListener } from '../http/node-fetch-adapter.ts';
import type { WorkerSocket } from '../messages.ts';
import type { FdListener, TcpAddress } from '../runtime/index.ts';
import { durationsOf } from '../settings.ts';
import type { EngineContext, EngineFactory, ServingEngine } from './base.ts';

/** Listens on an address with SO_REUSEPORT; closing stops accepting and leaves the connections to the tracker. */
function listenWithReusePort(server: http.Server, address: TcpAddress, backlog: number): Promise<FdListener> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port, backlog, reusePort: true }, () => {
      server.off('error', reject);
      // net.Server's close only stops accepting; http.Server's would also drop idle keep-alive connections at once.
      resolve({ close: () => net.Server.prototype.close.call(server) });
    });
  });
}

class NodeHttpEngine implements ServingEngine {
  private readonly context: EngineContext;
  private readonly tracker = new ConnectionTracker();
  private readonly listeners: FdListener[] = [];
  private readonly requestListener: http.RequestListener;

  constructor(context: EngineContext) {
    this.context = context;
    this.requestListener = createRequestListener(context.handler, { logger: context.logger, ...context.hooks });
  }

  async listen(sockets: WorkerSocket[]): Promise<void> {
    const { settings, runtime, hooks } = this.context;
    for (const socket of sockets) {
      const server = http.createServer();
      server.keepAliveTimeout = Math.max(durationsOf(settings).keepAliveMs, 1);
      this.tracker.track(server);
      server.on('request', (req, res) => {
        hooks.onRequestStart();
        this.tracker.requestStarted(req, res);
        this.requestListener(req, res);
      });
      this.listeners.push(socket.kind === 'fd'
        ? await runtime.listenOnFd(server, socket.fd, settings.backlog)
        : await listenWithReusePort(server, socket.address, settings.backlog));
    }
  }

  stopAccepting(): void {
    for (const listener of this.listeners) listener.close();
  }

  drain(): Promise<void> {
    return new Promise((resolve) => this.tracker.drain(resolve));
  }
}

/** Creates the node:http engine. */
export const createNodeHttpEngine: EngineFactory = (context) => new NodeHttpEngine(context);
