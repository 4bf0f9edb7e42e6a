/**
 * TLS in front of a node:http server: a tls.Server that never listens takes each connection the http.Server gets
 * (accepted on an inherited fd, or on the server's own socket) through the handshake, and hands the secure socket
 * to the listeners the http.Server had (node:http's and the ConnectionTracker's), as https.Server does with its
 * own. So the tracker and the adapter see the same TLS socket, and a request's socket says `encrypted`. A client
 * whose handshake fails or takes longer than the header timeout is closed with one debug line.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../glogging.ts';
import { sentUnverifiedCertificate, type TlsOptions, unverifiedCertificateLine } from '../../tls-options.ts';
import { setPeer } from './proxy-gate.ts';

type ConnectionListener = (socket: net.Socket) => void;

/** node:tls's own handshake timeout, used when --header-timeout is 0. */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 120_000;

/** How long a client has for its handshake: --header-timeout (`headerTimeoutMs`), or node:tls's default when 0. */
export function handshakeTimeoutOf(headerTimeoutMs: number): number {
  return headerTimeoutMs || DEFAULT_HANDSHAKE_TIMEOUT_MS;
}

/**
 * The TLS socket's peer as the TCP socket under it says (a PROXY header's client, proxy-gate.ts's setPeer): a
 * TLSSocket asks the TCP handle for its peer, never that socket's properties. `_parent` is the TCP socket a
 * TLSSocket wraps on Node, Deno and Bun alike.
 */
function takePeerFromTcp(socket: tls.TLSSocket): void {
  const tcp = (socket as tls.TLSSocket & { _parent?: net.Socket })._parent;
  if (tcp && Object.hasOwn(tcp, 'remoteAddress')) setPeer(socket, tcp.remoteAddress!, tcp.remotePort);
}

/**
 * Puts a TLS handshake between `server` and the 'connection' listeners it has now; call it once they are all
 * added (`handshakeTimeoutMs`: handshakeTimeoutOf()). A secure connection gets its peer and client-certificate
 * checks first, then goes to `takeOver` when that takes it (HTTP/2 chosen by ALPN: alpn-router.ts), else to those
 * listeners.
 */
export function handshakeFirst(
  server: net.Server, options: TlsOptions, handshakeTimeoutMs: number, logger: Logger,
  takeOver?: (socket: tls.TLSSocket) => boolean,
): tls.Server {
  const listeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  const tlsServer = tls.createServer({ ...options, handshakeTimeout: handshakeTimeoutMs });
  server.on('connection', (socket: net.Socket) => {
    // As https.Server does for the TCP sockets it accepts (its noDelay option): these were accepted elsewhere.
    socket.setNoDelay(true);
    tlsServer.emit('connection', socket);
  });
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    takePeerFromTcp(socket);
    if (options.verifySentCertificate && sentUnverifiedCertificate(socket)) {
      logger.debug(unverifiedCertificateLine(socket.remoteAddress, socket.authorizationError));
      socket.destroy();
      return;
    }
    if (takeOver?.(socket)) return;
    for (const listener of listeners) listener.call(server, socket);
  });
  // OpenSSL's messages are long (addresses, source files): node:tls's `reason` is their short text.
  tlsServer.on('tlsClientError', (error: Error & { reason?: string }, socket: tls.TLSSocket) => {
    logger.debug(`TLS handshake failed: ip=${socket.remoteAddress ?? '-'}: ${error.reason ?? error.message.split('\n')[0]}`);
  });
  return tlsServer;
}
