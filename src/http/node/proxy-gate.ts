/**
 * The PROXY protocol in front of node:http (or in front of its TLS handshake): a server's connections reach the
 * connection listeners it had only once their first bytes show whether a PROXY header is there. The client a header
 * names becomes the socket's `remoteAddress`/`remotePort` (own properties shadowing net.Socket's getters), which the
 * adapter, the logs and the access log's %(h)s all read. Other 'connection' listeners (the ConnectionTracker, added
 * after this) see the connection at once, so the header timeout covers a peer that never sends its first bytes;
 * in front of TLS, where the tracker sees only handshaken connections, the reader times the header itself.
 */
import type net from 'node:net';
import { invalidRequestLine, type Logger } from '../../glogging.ts';
import type { Settings } from '../../settings.ts';
import { PROXY_HEADER_REFUSAL, proxyPreambles } from '../proxy-protocol.ts';
import { readFirstBytes } from './first-bytes.ts';

type ConnectionListener = (socket: net.Socket) => void;

/** Makes `address`:`port` the socket's peer for every reader of `remoteAddress`/`remotePort`. */
export function setPeer(socket: net.Socket, address: string, port: number | undefined): void {
  Object.defineProperty(socket, 'remoteAddress', { value: address, configurable: true });
  Object.defineProperty(socket, 'remotePort', { value: port, configurable: true });
}

/**
 * Puts the PROXY header reader between `server` and the connection listeners it has now: node:http's, or, with
 * `handshakeTimeoutMs`, a TLS handshake's (tls-handshakes.ts), and then a connection whose header has not arrived
 * by that time is closed.
 */
export function readProxyHeadersFirst(
  server: net.Server, settings: Settings, logger: Logger, handshakeTimeoutMs?: number,
): void {
  const preambleFor = proxyPreambles(settings);
  if (!preambleFor) return;
  const handshakes = handshakeTimeoutMs !== undefined;
  const listeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    const peer = socket.remoteAddress;
    const preamble = preambleFor(peer);
    const timedOut = () => socket.destroy();
    if (handshakes) socket.setTimeout(handshakeTimeoutMs, timedOut);
    readFirstBytes(socket, (data) => {
      const verdict = preamble.feed(data);
      return verdict && (() => {
        if (handshakes) socket.setTimeout(0).off('timeout', timedOut);
        if (verdict.action !== 'serve') {
          logger.warning(invalidRequestLine(peer, verdict.reason));
          if (verdict.action === 'refuse') socket.end(PROXY_HEADER_REFUSAL);
          else socket.destroy();
          return;
        }
        if (verdict.client) setPeer(socket, verdict.client.address, verdict.client.port);
        const rest = Buffer.from(verdict.rest.buffer, verdict.rest.byteOffset, verdict.rest.byteLength);
        // node:tls takes a socket's buffered bytes (the start of the ClientHello) when it wraps it: they go back to
        // the socket's buffer (it stays paused until then).
        if (handshakes && rest.byteLength > 0) {
          socket.pause();
          socket.unshift(rest);
        }
        for (const listener of listeners) listener.call(server, socket);
        // node:http reads what arrives from now on; the bytes already read reach its parser as a 'data' event.
        if (!handshakes && rest.byteLength > 0) socket.emit('data', rest);
      });
    });
  });
}
