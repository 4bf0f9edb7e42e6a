/**
 * HTTP/2 over TLS (`--http-protocols` with `h2`): the protocol is chosen by ALPN in the TLS handshake (RFC 7301),
 * from the list the server offers in `--http-protocols` order. A TLS server's connections reach node:http's
 * listener, or the worker's HTTP/2 server (http2-server.ts, which serves a TLSSocket as it serves a plain socket:
 * `:scheme` https, `socket.encrypted`) when the client chose `h2`, so that a connection goes to one server only.
 */
import type tls from 'node:tls';
import type { HttpProtocol } from '../http-protocols.ts';
import type { Http2Connections } from './http2-server.ts';

/** The ALPN names (`h2`, `http/1.1`) of the protocols TLS can negotiate, in the order of `--http-protocols`. */
export function alpnProtocolsOf(protocols: readonly HttpProtocol[]): string[] {
  return protocols.flatMap((protocol) => (protocol === 'h2' ? ['h2'] : protocol === 'h1' ? ['http/1.1'] : []));
}

/**
 * For tls-handshakes.ts's handshakeFirst: takes a secure connection whose client chose `h2` (after the handshake's
 * peer and certificate checks) to `http2`; the others (`http/1.1`, or no ALPN) stay with node:http.
 */
export function negotiatedHttp2(http2: Http2Connections): (socket: tls.TLSSocket) => boolean {
  return (socket) => {
    if (socket.alpnProtocol !== 'h2') return false;
    http2.serve(socket);
    return true;
  };
}
