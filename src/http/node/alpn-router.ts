/**
 * HTTP/2 over TLS (`--http-protocols` with `h2`): the protocol is chosen by ALPN in the TLS handshake (RFC 7301),
 * from the list the server offers in `--http-protocols` order. A TLS server's connections reach node:http's
 * listener, or the worker's HTTP/2 server (http2-server.ts, which serves a TLSSocket as it serves a plain socket:
 * `:scheme` https, `socket.encrypted`) when the client chose `h2`. As the h2c gate does for plain sockets, this
 * takes over the connection listeners the server has now, so that a connection goes to one server only.
 */
import type tls from 'node:tls';
import type { HttpProtocol } from '../http-protocols.ts';
import type { Http2Connections } from './http2-server.ts';

/** The ALPN names (`h2`, `http/1.1`) of the protocols TLS can negotiate, in the order of `--http-protocols`. */
export function alpnProtocolsOf(protocols: readonly HttpProtocol[]): string[] {
  return protocols.flatMap((protocol) => (protocol === 'h2' ? ['h2'] : protocol === 'h1' ? ['http/1.1'] : []));
}

type SecureConnectionListener = (socket: tls.TLSSocket) => void;

/**
 * Hands the connections of `server` (an https.Server made with the ALPNProtocols of alpnProtocolsOf()) that chose
 * `h2` to `http2`, the others to the listeners `server` has now (node:http's). A client that offers no ALPN speaks
 * HTTP/1.1.
 */
export function routeNegotiatedProtocols(server: tls.Server, http2: Http2Connections): void {
  const httpListeners = server.listeners('secureConnection') as SecureConnectionListener[];
  server.removeAllListeners('secureConnection');
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol === 'h2') http2.serve(socket);
    else for (const listener of httpListeners) listener.call(server, socket);
  });
}
