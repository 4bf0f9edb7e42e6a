/**
 * The client certificate a handler reads as `info.clientCertificate` on a TLS connection: the one its client sent
 * and the handshake verified against --ca-certs (--cert-reqs 1 or 2), as node:crypto's X509Certificate (subject,
 * issuer, serialNumber, fingerprint256, validFrom/validTo, `raw` DER, toString() PEM), or null. Gunicorn's apps read
 * the same from `environ['gunicorn.socket'].getpeercert()`. Nothing is read unless the handler asks; then it is
 * parsed once per connection.
 */
import type { X509Certificate } from 'node:crypto';

/** What a TLS socket tells of its client's certificate (node:tls's TLSSocket, Bun.listen's sockets). */
export interface VerifiedPeer {
  /** The certificate the client sent verified. */
  readonly authorized: boolean;
  getPeerX509Certificate(): X509Certificate | undefined;
}

/** Each connection's certificate, once read. */
const certificates = new WeakMap<VerifiedPeer, X509Certificate | null>();

/** The verified certificate of `socket`'s client, or null when it sent none (or none was asked for). */
export function clientCertificateOf(socket: VerifiedPeer): X509Certificate | null {
  let certificate = certificates.get(socket);
  if (certificate === undefined) {
    // A certificate that does not verify never gets this far (--cert-reqs 1 and 2 close its connection).
    certificate = socket.authorized ? socket.getPeerX509Certificate() ?? null : null;
    certificates.set(socket, certificate);
  }
  return certificate;
}
