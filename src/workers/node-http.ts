/**
 * The node:http engine: one http.Server per socket, serving the Fetch handler through the node:http adapter.
 * An inherited fd is served the way the runtime allows (src/runtime/); a reuse-port address (Node >= 22.12)
 * with `listen({ reusePort })`. The connection tracker times out quiet keep-alive connections (instead of
 * node:http's timer per request) and stuck writes, caps the connections, admits a connection's pipelined requests
 * a few at a time, and drains: in-flight requests finish, quiet connections are closed.
 */
import http from 'node:http';
import net from 'node:net';
import { ConnectionTracker } from '../http/connections.ts';
import { ForwardingPolicy } from '../http/forwarded.ts';
import { requestLimitsOf } from '../http/limits.ts';
import { createClientErrorListener, createConnectListener } from '../http/node/socket-refusals.ts';
import { createRequestListener, type FetchRequestListener } from '../http/node-fetch-adapter.ts';
import { readProxyHeadersFirst } from '../http/node/proxy-gate.ts';
import { handshakeFirst } from '../http/node/tls-handshakes.ts';
import { requestDeadlinesOf } from '../http/request-deadlines.ts';
import type { WorkerSocket } from '../messages.ts';
import type { FdListener, TcpAddress } from '../runtime/index.ts';
import { durationsOf } from '../settings.ts';
import { type TlsOptions, tlsOptionsFrom } from '../tls-options.ts';
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
  private readonly tracker: ConnectionTracker;
  private readonly listeners: FdListener[] = [];
  private readonly requestListener: FetchRequestListener;
  private readonly continueListener: http.RequestListener;
  private readonly clientErrorListener: ReturnType<typeof createClientErrorListener>;
  private readonly connectListener: ReturnType<typeof createConnectListener>;
  /** The TLS the connections speak (read from the files at boot), or undefined for plain HTTP. */
  private readonly tls?: TlsOptions;

  constructor(context: EngineContext) {
    const { handler, logger, hooks, settings, runtime } = context;
    this.context = context;
    const { keepAliveMs, headerTimeoutMs, requestTimeoutMs, writeTimeoutMs } = durationsOf(settings);
    this.tracker = new ConnectionTracker({ keepAliveMs, headerTimeoutMs, writeTimeoutMs, maxConnections: settings.workerConnections }, logger);
    this.requestListener = this.tracker.admitting(createRequestListener(handler, {
      logger,
      shouldCloseConnection: hooks.shouldCloseConnection,
      onRequestStart: (incoming) => {
        hooks.onRequestStart();
        this.tracker.requestStarted(incoming.socket);
      },
      onRequestDone: (entry, incoming) => {
        this.tracker.requestDone(incoming.socket);
        hooks.onRequestDone(entry);
      },
    }, {
      answerAfterParse: runtime.nodeHttpAnswersAfterParse,
      limits: requestLimitsOf(settings),
      forwarding: new ForwardingPolicy(settings),
      serverHeader: settings.serverHeader,
      deadlines: requestDeadlinesOf(requestTimeoutMs, logger),
    }));
    this.continueListener = (incoming, res) => this.requestListener(incoming, res, true);
    this.clientErrorListener = createClientErrorListener(logger);
    this.connectListener = createConnectListener(logger);
    this.tls = tlsOptionsFrom(settings);
  }

  async listen(sockets: WorkerSocket[]): Promise<void> {
    const { settings, runtime, logger } = this.context;
    for (const socket of sockets) {
      // node:http's own 400 for an HTTP/1.1 request without Host is neither logged nor after the limits: the head
      // rules answer it.
      const server = http.createServer({ requireHostHeader: false }, this.requestListener);
      // Without these listeners node:http answers `Expect: 100-continue` with 100 before the handler runs, and any
      // other expectation with a 417 it does not log: the adapter sends 100 on the body's first read instead, and
      // the head rules answer 417 with the invalid-request log line.
      server.on('checkContinue', this.continueListener);
      server.on('checkExpectation', this.requestListener);
      server.on('clientError', this.clientErrorListener);
      server.on('connect', this.connectListener);
      readProxyHeadersFirst(server, settings, logger);
      // The tracker times quiet keep-alive connections out (node:http's timeout costs a timer per request).
      server.keepAliveTimeout = 0;
      this.tracker.track(server);
      if (this.tls) handshakeFirst(server, this.tls, durationsOf(settings).headerTimeoutMs, logger);
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
