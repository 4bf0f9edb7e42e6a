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
import { type CleartextProtocols, cleartextProtocols, parseHttpProtocols } from '../http/http-protocols.ts';
import { alpnProtocolsOf, negotiatedHttp2 } from '../http/node/alpn-router.ts';
import { routeHttp2Prefaces } from '../http/node/h2c-gate.ts';
import { adapterHooksOf, adapterOptionsOf } from '../http/node/adapter-setup.ts';
import { type Http2Connections, http2ConnectionsFor } from '../http/node/http2-server.ts';
import { createClientErrorListener, createConnectListener } from '../http/node/socket-refusals.ts';
import { createRequestListener, type FetchRequestListener } from '../http/node-fetch-adapter.ts';
import { readProxyHeadersFirst } from '../http/node/proxy-gate.ts';
import { handshakeFirst, handshakeTimeoutOf } from '../http/node/tls-handshakes.ts';
import { parsePeerList } from '../http/trusted-peers.ts';
import type { WorkerSocket } from '../messages.ts';
import type { FdListener, TcpAddress } from '../runtime/index.ts';
import { durationsOf } from '../settings.ts';
import { type TlsOptions, tlsOptionsFrom } from '../tls-options.ts';
import type { EngineContext, EngineFactory, ServingEngine } from './base.ts';
import { NodeUpgrades } from '../websocket/node-upgrade.ts';
import { WebSocketSessions } from '../websocket/sessions.ts';
import { webSocketStarter } from '../websocket/starter.ts';

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
  /** What the plain sockets serve (--http-protocols). */
  private readonly protocols: CleartextProtocols;
  /** The HTTP/2 server, with h2c on. */
  private readonly http2?: Http2Connections;
  private readonly webSockets = new WebSocketSessions();
  /** Undefined when the app exports no `websocket` handler: node:http then answers Upgrade requests as any other. */
  private readonly upgrades?: NodeUpgrades;
  /** The TLS the connections speak (read from the files at boot), or undefined for plain HTTP. */
  private readonly tls?: TlsOptions;

  constructor(context: EngineContext) {
    const { handler, logger, hooks, settings, runtime, websocket } = context;
    this.context = context;
    this.protocols = cleartextProtocols(settings.httpProtocols);
    // With TLS, HTTP/2 is offered by ALPN when `h2` is listed (the master refuses h2c with TLS).
    const listed = parseHttpProtocols(settings.httpProtocols);
    const alpn = settings.certfile !== null && listed.includes('h2') ? alpnProtocolsOf(listed) : undefined;
    this.tls = tlsOptionsFrom(settings, alpn);
    const { keepAliveMs, headerTimeoutMs, writeTimeoutMs } = durationsOf(settings);
    this.tracker = new ConnectionTracker({ keepAliveMs, headerTimeoutMs, writeTimeoutMs, maxConnections: settings.workerConnections }, logger,
      (socket) => this.http2?.goAway(socket) ?? false);
    // An upgraded socket stays busy for the tracker (no keep-alive timeout, the write timeout applies) until it closes.
    this.upgrades = websocket && new NodeUpgrades(
      webSocketStarter(websocket, settings.wsMaxMessage, logger, this.webSockets), (socket) => this.tracker.requestStarted(socket));
    const adapterHooks = adapterHooksOf(hooks, logger, (socket) => this.tracker.requestStarted(socket), (socket) => this.tracker.requestDone(socket));
    const adapterOptions = adapterOptionsOf(settings, runtime, logger);
    this.requestListener = this.tracker.admitting(createRequestListener(handler, adapterHooks, { ...adapterOptions, upgrades: this.upgrades }));
    this.http2 = this.protocols.h2c || alpn ? http2ConnectionsFor(handler, adapterHooks, adapterOptions, settings, logger) : undefined;
    this.continueListener = (incoming, res) => this.requestListener(incoming, res, true);
    this.clientErrorListener = createClientErrorListener(logger);
    this.connectListener = createConnectListener(logger);
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
      // Before the PROXY header reader, which then hands it the connections.
      this.routeHttp2(server);
      // With TLS, the PROXY header comes in clear before the handshake: its reader goes in front of that (below).
      if (!this.tls) readProxyHeadersFirst(server, settings, logger);
      this.upgrades?.listen(server, this.requestListener);
      // The tracker times quiet keep-alive connections out (node:http's timeout costs a timer per request).
      server.keepAliveTimeout = 0;
      this.tracker.track(server);
      if (this.tls) {
        const handshakeTimeoutMs = handshakeTimeoutOf(durationsOf(settings).headerTimeoutMs);
        handshakeFirst(server, this.tls, handshakeTimeoutMs, logger,
          this.http2 && this.tls.ALPNProtocols ? negotiatedHttp2(this.http2) : undefined);
        readProxyHeadersFirst(server, settings, logger, handshakeTimeoutMs);
      }
      this.listeners.push(socket.kind === 'fd'
        ? await runtime.listenOnFd(server, socket.fd, settings.backlog)
        : await listenWithReusePort(server, socket.address, settings.backlog));
    }
  }

  /**
   * With h2c on, checks each connection's first bytes for the HTTP/2 preface (without h1 and h2c the master
   * refuses to start).
   */
  private routeHttp2(server: http.Server): void {
    const { protocols, http2 } = this;
    if (!http2 || !protocols.h2c) return;
    const { settings, logger } = this.context;
    // parsePeerList is the setting's own validator: the list is valid here.
    const trusted = parsePeerList(settings.forwardedAllowIps, '--forwarded-allow-ips');
    routeHttp2Prefaces(server, { protocols, trusted, http2, logger });
  }

  stopAccepting(): void {
    for (const listener of this.listeners) listener.close();
  }

  /** An upgraded connection is busy until its WebSocket closes: each gets close 1001 first. HTTP/2 sessions get GOAWAY. */
  drain(): Promise<void> {
    void this.webSockets.drain();
    this.http2?.drain();
    return new Promise((resolve) => this.tracker.drain(resolve));
  }
}

/** Creates the node:http engine. */
export const createNodeHttpEngine: EngineFactory = (context) => new NodeHttpEngine(context);
