/**
 * The PROXY protocol in front of node:http: a server's connections reach node:http's own connection listener only
 * once their first bytes show whether a PROXY header is there. The client a header names becomes the socket's
 * `remoteAddress`/`remotePort` (own properties shadowing net.Socket's getters), which the adapter, the logs and the
 * access log's %(h)s all read. Other 'connection' listeners (the ConnectionTracker, added after this) see the
 * connection at once, so the header timeout covers a peer that never sends its first bytes.
 */
import type net from 'node:net';
import { invalidRequestLine, type Logger } from '../../glogging.ts';
import type { Settings } from '../../settings.ts';
import { PROXY_HEADER_REFUSAL, proxyPreambles } from '../proxy-protocol.ts';
import { readFirstBytes } from './first-bytes.ts';

type ConnectionListener = (socket: net.Socket) => void;

/** Puts the PROXY header reader between `server` and the connection listeners it has now (node:http's). */
export function readProxyHeadersFirst(server: net.Server, settings: Settings, logger: Logger): void {
  const preambleFor = proxyPreambles(settings);
  if (!preambleFor) return;
  const httpListeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: net.Socket) => {
    const peer = socket.remoteAddress;
    const preamble = preambleFor(peer);
    readFirstBytes(socket, (data) => {
      const verdict = preamble.feed(data);
      return verdict && (() => {
        if (verdict.action !== 'serve') {
          logger.warning(invalidRequestLine(peer, verdict.reason));
          if (verdict.action === 'refuse') socket.end(PROXY_HEADER_REFUSAL);
          else socket.destroy();
          return;
        }
        if (verdict.client) {
          Object.defineProperty(socket, 'remoteAddress', { value: verdict.client.address, configurable: true });
          Object.defineProperty(socket, 'remotePort', { value: verdict.client.port, configurable: true });
        }
        for (const listener of httpListeners) listener.call(server, socket);
        // node:http reads what arrives from now on; the bytes already read reach its parser as a 'data' event.
        if (verdict.rest.byteLength > 0) socket.emit('data', Buffer.from(verdict.rest.buffer, verdict.rest.byteOffset, verdict.rest.byteLength));
      });
    });
  });
}
