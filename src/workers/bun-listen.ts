/**
 * The Bun.listen engine: Bun's raw TCP listener accepts on the inherited fds (Bun.serve takes no fd), and each
 * connection speaks HTTP/1.1 through src/http/h1/ or, with HTTP/2 on, HTTP/2 through node:http2
 * (_bun-protocol-switch.ts). Stopping closes the worker's copy of each fd; the master
 * keeps the socket. Draining lets requests in flight finish and closes quiet connections after a short grace.
 */
import type { X509Certificate } from 'node:crypto';
import { invalidRequestLine } from '../glogging.ts';
import { clientCertificateOf } from '../http/client-certificate.ts';
import { drainIdleMs, QUIET_CONNECTION_GRACE_MS } from '../http/connections.ts';
import { H1Connection, type H1Transport } from '../http/h1/connection.ts';
import { cleartextProtocols, parseHttpProtocols } from '../http/http-protocols.ts';
import { adapterHooksOf, adapterOptionsOf } from '../http/node/adapter-setup.ts';
import { alpnProtocolsOf } from '../http/node/alpn-router.ts';
import { type Http2Connections, http2ConnectionsFor } from '../http/node/http2-server.ts';
import { parsePeerList } from '../http/trusted-peers.ts';
import { requestLimitsOf } from '../http/limits.ts';
import { PROXY_HEADER_REFUSAL, type ProxyPreamble, proxyPreambles, type ProxyVerdict } from '../http/proxy-protocol.ts';
import { InvalidResponseFieldError } from '../http/response-policy.ts';
import { logOverCapacity, OVER_CAPACITY_RESPONSE } from '../http/over-capacity.ts';
import type { RemoteAddress } from '../http/types.ts';
import type { WorkerSocket } from '../messages.ts';
import { durationsOf } from '../settings.ts';
import { sentUnverifiedCertificate, tlsOptionsFrom, unverifiedCertificateLine } from '../tls-options.ts';
import type { EngineContext, EngineFactory, ServingEngine } from './base.ts';
import { LateTlsConnections } from './_bun-late-tls.ts';
import { type BunTlsOptions, bunTlsOptions } from './_bun-tls.ts';
import { http2ConnectionOf } from './_bun-http2-connection.ts';
import { type Http2Switching, ProtocolSwitch, type ServedConnection } from './_bun-protocol-switch.ts';
import { nativeHandler } from './_native.ts';
import { WebSocketSessions } from '../websocket/sessions.ts';
import { webSocketStarter } from '../websocket/starter.ts';

interface BunSocket {
  /** Undefined on a connection refused past --worker-connections. */
  data: ServedConnection | undefined;
  readonly remoteAddress?: string;
  /** TLS: the protocol the client chose by ALPN. */
  readonly alpnProtocol?: string | false | null;
  readonly remotePort?: number;
  /** TLS: the client's certificate verified. */
  readonly authorized: boolean;
  getPeerCertificate(): object | undefined;
  getPeerX509Certificate(): X509Certificate | undefined;
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

interface BunListener {
  stop(closeActiveConnections?: boolean): void;
}

interface BunListen {
  listen(options: {
    fd: number;
    allowHalfOpen: boolean;
    tls?: BunTlsOptions;
    socket: {
      open(socket: BunSocket): void;
      data(socket: BunSocket, data: Uint8Array): void;
      drain(socket: BunSocket): void;
      end(socket: BunSocket): void;
      close(socket: BunSocket): void;
      error(socket: BunSocket, error: Error): void;
      /** TLS: the handshake is over (`success` false: it failed). */
      handshake?(socket: BunSocket, success: boolean, authorizationError: Error | null): void;
    };
  }): BunListener;
}

const Bun = (globalThis as unknown as { Bun: BunListen }).Bun;

/** The client's address as the socket reports it (a unix socket has none). */
function remoteAddrOf(socket: BunSocket): RemoteAddress {
  return socket.remoteAddress
    ? { transport: 'tcp', hostname: socket.remoteAddress, port: socket.remotePort ?? 0 }
    : { transport: 'unix', hostname: '', port: 0 };
}

function transportOf(socket: BunSocket, remoteAddr: RemoteAddress, secure: boolean): H1Transport {
  return {
    remoteAddr,
    secure,
    ...(secure ? { clientCertificate: () => clientCertificateOf(socket) } : {}),
    write: (data) => socket.write(data),
    end: () => socket.end(),
    destroy: () => socket.terminate(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

class BunListenEngine implements ServingEngine {
  private readonly context: EngineContext;
  private readonly listeners: BunListener[] = [];
  private readonly connections = new Set<ServedConnection>();
  private readonly webSockets = new WebSocketSessions();
  private draining = false;
  private onIdle?: () => void;
  /** The HTTP/2 server, with HTTP/2 on. */
  private http2?: Http2Connections;
  /** How long a drain keeps an idle keep-alive connection open. */
  private readonly idleGraceMs: number;

  constructor(context: EngineContext) {
    this.context = context;
    this.idleGraceMs = drainIdleMs(durationsOf(context.settings).keepAliveMs);
  }

  async listen(sockets: WorkerSocket[]): Promise<void> {
    const { logger, settings } = this.context;
    const handle = nativeHandler(this.context);
    const limits = requestLimitsOf(settings);
    const onError = (message: string, error: unknown) => {
      if (error === undefined) logger.warning(message);
      else if (error instanceof InvalidResponseFieldError) logger.error(`${message}: ${error.message}`);
      else logger.exception(message, error);
    };
    const headOptions = { serverHeader: settings.serverHeader };
    const connections = this.connections;
    const http2 = this.http2Switching(onError);
    const tls = tlsOptionsFrom(settings, http2?.alpn);
    const secure = tls !== undefined;
    // With --proxy-protocol, TLS begins after the header, which comes in clear: Bun's own TLS cannot (_bun-late-tls.ts).
    const lateTls = tls && settings.proxyProtocol !== 'off' ? new LateTlsConnections(tls, logger) : undefined;
    const proxyHeaders = this.proxyHeaderReader(lateTls
      ? (socket, data) => lateTls.data(socket, data)
      : (socket, data) => socket.data?.onData(data));
    const maxConnections = settings.workerConnections;
    const { websocket } = this.context;
    const startWebSocket = websocket && webSocketStarter(websocket, settings.wsMaxMessage, logger, this.webSockets);
    const socketHandlers = {
      open: (socket: BunSocket) => {
        if (connections.size >= maxConnections) {
          logOverCapacity(logger, socket.remoteAddress, maxConnections);
          socket.write(OVER_CAPACITY_RESPONSE);
          socket.end();
          return;
        }
        const remoteAddr = remoteAddrOf(socket);
        const transport = lateTls ? lateTls.transportOf(socket, remoteAddr) : transportOf(socket, remoteAddr, secure);
        const h1 = new H1Connection(transport, handle, onError, limits, headOptions, startWebSocket);
        const connection = http2 ? new ProtocolSwitch(socket, transport.remoteAddr, secure, h1, http2.switching) : h1;
        socket.data = connection;
        connections.add(connection);
        proxyHeaders?.open(socket, transport.remoteAddr);
        if (this.draining) connection.drain(QUIET_CONNECTION_GRACE_MS, this.idleGraceMs);
      },
      data: proxyHeaders
        ? (socket: BunSocket, data: Uint8Array) => proxyHeaders.data(socket, data)
        : (socket: BunSocket, data: Uint8Array) => socket.data?.onData(data),
      drain: lateTls ? (socket: BunSocket) => lateTls.drain(socket) : (socket: BunSocket) => socket.data?.onDrain(),
      end: lateTls ? (socket: BunSocket) => lateTls.end(socket) : (socket: BunSocket) => socket.data?.onEnd(),
      close: (socket: BunSocket) => {
        proxyHeaders?.close(socket);
        lateTls?.close(socket);
        if (!socket.data) return;
        socket.data.onClose();
        connections.delete(socket.data);
        if (this.draining && connections.size === 0) this.onIdle?.();
      },
      error: (_socket: BunSocket, error: Error) => logger.debug(`Connection error: ${error.message}`),
      // --cert-reqs 1: Bun lets a client certificate that does not verify through when certificates are optional.
      ...(tls?.verifySentCertificate || http2?.alpn ? {
        handshake(socket: BunSocket, _success: boolean, authorizationError: Error | null) {
          if (tls?.verifySentCertificate && sentUnverifiedCertificate(socket)) {
            logger.debug(unverifiedCertificateLine(socket.remoteAddress, authorizationError));
            socket.terminate();
          } else if (socket.alpnProtocol === 'h2') {
            // With HTTP/2 on, every connection is a ProtocolSwitch (socket.data is undefined past --worker-connections).
            (socket.data as ProtocolSwitch | undefined)?.toHttp2();
          }
        },
      } : {}),
    };
    for (const socket of sockets) {
      if (socket.kind !== 'fd') throw new Error('the bun-listen engine serves inherited fds only');
      this.listeners.push(Bun.listen({
        fd: socket.fd, allowHalfOpen: true, socket: socketHandlers, ...(tls && !lateTls ? { tls: bunTlsOptions(tls) } : {}),
      }));
    }
    // A fresh connection gets at least a second for its first request, whatever --keep-alive says; one that has
    // not sent a whole request head --header-timeout after it began to wait is cut, however slowly bytes arrive;
    // one whose client has taken nothing of a response for --write-timeout is cut.
    const { keepAliveMs, headerTimeoutMs, writeTimeoutMs } = durationsOf(settings);
    const idleLimitMs = Math.max(keepAliveMs, 1000);
    const headerLimitMs = headerTimeoutMs > 0 ? headerTimeoutMs : Infinity;
    const writeLimitMs = writeTimeoutMs > 0 ? writeTimeoutMs : Infinity;
    setInterval(() => {
      const now = performance.now();
      for (const connection of connections) {
        if (connection.idleSince === undefined) {
          connection.abortIfStuck(now, writeLimitMs);
          continue;
        }
        const waited = now - connection.idleSince;
        if (waited >= headerLimitMs) connection.abortIfWaiting();
        else if (waited >= idleLimitMs) connection.closeIfIdle(0);
      }
    }, Math.min(idleLimitMs / 2, headerLimitMs / 2, writeLimitMs / 4, 1000)).unref();
  }

  /**
   * With HTTP/2 on (`--http-protocols` with h2c, or h2 with --certfile): the worker's HTTP/2 server and what each
   * connection's switch needs, and the ALPN list TLS offers; undefined otherwise.
   */
  private http2Switching(onError: Http2Switching['onError']): { switching: Http2Switching; alpn?: string[] } | undefined {
    const { settings, logger, handler, hooks, runtime } = this.context;
    const listed = parseHttpProtocols(settings.httpProtocols);
    const withTls = settings.certfile !== null;
    if (withTls ? !listed.includes('h2') : !listed.includes('h2c')) return undefined;
    const adapterHooks = adapterHooksOf(hooks, logger, (socket) => http2ConnectionOf(socket)?.streamStarted(),
      (socket) => http2ConnectionOf(socket)?.streamDone());
    const http2 = http2ConnectionsFor(handler, adapterHooks, adapterOptionsOf(settings, runtime, logger), settings, logger);
    this.http2 = http2;
    // parsePeerList is the setting's own validator: the list is valid here.
    const trusted = parsePeerList(settings.forwardedAllowIps, '--forwarded-allow-ips');
    return withTls
      ? { switching: { http2, trusted, logger, onError }, alpn: alpnProtocolsOf(listed) }
      : { switching: { http2, trusted, logger, onError, cleartext: cleartextProtocols(settings.httpProtocols) } };
  }

  /**
   * With --proxy-protocol: reads each connection's PROXY header before its bytes go on to `next` (the H1Connection,
   * or TLS), and writes the client it names into the connection's address (the object the connection reports to
   * the app and the logs; no request has been parsed before). Undefined when the setting is off.
   */
  private proxyHeaderReader(next: (socket: BunSocket, data: Uint8Array) => void) {
    const { settings, logger } = this.context;
    const preambleFor = proxyPreambles(settings);
    if (!preambleFor) return undefined;
    const reading = new Map<BunSocket, { preamble: ProxyPreamble; remoteAddr: RemoteAddress }>();
    const act = (socket: BunSocket, remoteAddr: RemoteAddress, verdict: ProxyVerdict) => {
      if (verdict.action === 'serve') {
        if (verdict.client) {
          // Also behind a unix socket: the client the header names is a TCP peer (as node-http reports it).
          remoteAddr.transport = 'tcp';
          remoteAddr.hostname = verdict.client.address;
          remoteAddr.port = verdict.client.port;
        }
        if (verdict.rest.byteLength > 0) next(socket, verdict.rest);
        return;
      }
      logger.warning(invalidRequestLine(remoteAddr.hostname, verdict.reason));
      if (verdict.action === 'refuse') {
        socket.write(PROXY_HEADER_REFUSAL);
        socket.end();
      } else {
        socket.terminate();
      }
    };
    return {
      open(socket: BunSocket, remoteAddr: RemoteAddress): void {
        reading.set(socket, { preamble: preambleFor(remoteAddr.transport === 'unix' ? undefined : remoteAddr.hostname), remoteAddr });
      },
      data(socket: BunSocket, data: Uint8Array): void {
        const state = reading.get(socket);
        if (!state) {
          // Also a connection refused over --worker-connections, which has no H1Connection.
          next(socket, data);
          return;
        }
        const verdict = state.preamble.feed(data);
        if (!verdict) return;
        reading.delete(socket);
        act(socket, state.remoteAddr, verdict);
      },
      close(socket: BunSocket): void {
        reading.delete(socket);
      },
    };
  }

  stopAccepting(): void {
    for (const listener of this.listeners) listener.stop(false);
  }

  /** An upgraded connection is busy until its WebSocket closes: each gets close 1001 first. */
  drain(): Promise<void> {
    this.draining = true;
    void this.webSockets.drain();
    this.http2?.drain();
    return new Promise((resolve) => {
      this.onIdle = resolve;
      for (const connection of this.connections) connection.drain(QUIET_CONNECTION_GRACE_MS, this.idleGraceMs);
      if (this.connections.size === 0) resolve();
    });
  }
}

/** Creates the Bun.listen engine. */
export const createBunListenEngine: EngineFactory = (context) => new BunListenEngine(context);
