/**
 * TLS begun on a Bun.listen connection after its first bytes: a PROXY header comes in clear before the handshake
 * (HAProxy's `send-proxy` with TLS passthrough, AWS NLB). Bun's listener speaks TLS from the accept on, and its
 * socket.upgradeTLS() never finished a server handshake when probed (Bun 1.4.5: the ClientHello kept reaching the
 * plain socket's handlers), so node:tls's TLSSocket runs in server mode over a Duplex that the Bun socket feeds, the
 * bytes read with the header first. Used only with --proxy-protocol and --certfile together: every byte crosses
 * JavaScript twice more than with Bun's own TLS.
 */
import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Logger } from '../glogging.ts';
import { clientCertificateOf } from '../http/client-certificate.ts';
import type { H1Connection, H1Transport } from '../http/h1/connection.ts';
import type { RemoteAddress } from '../http/types.ts';
import { sentUnverifiedCertificate, type TlsOptions, unverifiedCertificateLine } from '../tls-options.ts';
import { BunSocketDuplex } from './_bun-socket-duplex.ts';

/** The part of a Bun.listen socket this uses. */
export interface PlainBunSocket {
  /** The connection its decrypted bytes go to. */
  data: Pick<H1Connection, 'onData' | 'onEnd' | 'onDrain'> | undefined;
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

/** What every connection's TLS shares. */
interface LateTlsContext {
  options: TlsOptions;
  secureContext: tls.SecureContext;
  logger: Logger;
}

/** One connection: plain until its first bytes after the header, TLS from then on. */
class LateTlsTransport implements H1Transport {
  readonly secure = true;
  readonly remoteAddr: RemoteAddress;
  private readonly socket: PlainBunSocket;
  private readonly context: LateTlsContext;
  /** The stream node:tls reads the client's bytes from and writes its own to; set once the handshake starts. */
  private stream?: BunSocketDuplex;
  private tlsSocket?: tls.TLSSocket;
  /** The TLS handshake is over. */
  private handshaken = false;

  constructor(socket: PlainBunSocket, remoteAddr: RemoteAddress, context: LateTlsContext) {
    this.socket = socket;
    this.remoteAddr = remoteAddr;
    this.context = context;
  }

  /** Bytes from the client after the PROXY header. */
  feed(data: Uint8Array): void {
    (this.stream ?? this.startTls()).onData(data);
  }

  /** The Bun socket can take more bytes. */
  drained(): void {
    this.stream?.onDrain();
  }

  /** The client half-closed; true when the TLS socket takes it (else the connection has not begun TLS). */
  ended(): boolean {
    this.stream?.onEnd();
    return this.stream !== undefined;
  }

  /** The Bun socket is closed. */
  closed(): void {
    this.stream?.onClose();
    this.tlsSocket?.destroy();
  }

  /** node:tls over the Bun socket as a Duplex (backpressure both ways: _bun-socket-duplex.ts). */
  private startTls(): BunSocketDuplex {
    const { socket, context: { options, secureContext } } = this;
    const stream = new BunSocketDuplex(socket, this.remoteAddr, false);
    const secure = new tls.TLSSocket(stream, {
      isServer: true, secureContext, requestCert: options.requestCert, rejectUnauthorized: options.rejectUnauthorized,
    });
    secure.on('secure', () => this.secured(secure));
    secure.on('data', (data: Buffer) => socket.data?.onData(data));
    secure.on('end', () => socket.data?.onEnd());
    secure.on('drain', () => socket.data?.onDrain());
    secure.on('error', (error: Error) => {
      const what = this.handshaken ? 'Connection error' : `TLS handshake failed: ip=${this.remoteAddr.hostname || '-'}`;
      this.context.logger.debug(`${what}: ${error.message.split('\n')[0]}`);
      socket.terminate();
    });
    this.stream = stream;
    this.tlsSocket = secure;
    return stream;
  }

  /**
   * The handshake is over: a certificate that does not verify is refused with --cert-reqs 1 too (node:tls lets it
   * through when certificates are optional), as tls-handshakes.ts does.
   */
  private secured(secure: tls.TLSSocket): void {
    this.handshaken = true;
    if (!this.context.options.verifySentCertificate || !sentUnverifiedCertificate(secure)) return;
    this.context.logger.debug(unverifiedCertificateLine(this.remoteAddr.hostname, secure.authorizationError));
    this.destroy();
  }

  write(data: Uint8Array): number {
    const secure = this.tlsSocket;
    if (!secure) return this.socket.write(data);
    // What node:tls has buffered past its high-water mark waits for 'drain' (then onDrain() writes it again).
    if (secure.writableNeedDrain) return 0;
    secure.write(data);
    return data.byteLength;
  }

  end(): void {
    if (this.tlsSocket) this.tlsSocket.end();
    else this.socket.end();
  }

  destroy(): void {
    this.tlsSocket?.destroy();
    this.socket.terminate();
  }

  pause(): void {
    if (this.tlsSocket) this.tlsSocket.pause();
    else this.socket.pause();
  }

  resume(): void {
    if (this.tlsSocket) this.tlsSocket.resume();
    else this.socket.resume();
  }

  /** The client's verified certificate, or null (none yet before the handshake). */
  clientCertificate(): X509Certificate | null {
    return this.tlsSocket ? clientCertificateOf(this.tlsSocket) : null;
  }
}

/** The connections of a Bun.listen engine that begin TLS after their PROXY header, by socket. */
export class LateTlsConnections {
  private readonly context: LateTlsContext;
  private readonly transports = new Map<PlainBunSocket, LateTlsTransport>();

  constructor(options: TlsOptions, logger: Logger) {
    const { cert, key, ca, ciphers, minVersion } = options;
    const secureContext = tls.createSecureContext({
      cert, key, minVersion, ...(ca !== undefined ? { ca } : {}), ...(ciphers !== undefined ? { ciphers } : {}),
    });
    this.context = { options, secureContext, logger };
  }

  /** The transport of a new connection (writes go to the plain socket until its TLS begins). */
  transportOf(socket: PlainBunSocket, remoteAddr: RemoteAddress): H1Transport {
    const transport = new LateTlsTransport(socket, remoteAddr, this.context);
    this.transports.set(socket, transport);
    return transport;
  }

  /** The client's bytes after its PROXY header (a connection refused over --worker-connections has none). */
  data(socket: PlainBunSocket, data: Uint8Array): void {
    this.transports.get(socket)?.feed(data);
  }

  drain(socket: PlainBunSocket): void {
    this.transports.get(socket)?.drained();
  }

  /** The client half-closed. */
  end(socket: PlainBunSocket): void {
    if (!this.transports.get(socket)?.ended()) socket.data?.onEnd();
  }

  close(socket: PlainBunSocket): void {
    this.transports.get(socket)?.closed();
    this.transports.delete(socket);
  }
}
