/**
 * HTTP/2 beside HTTP/1.1 on the bun-listen engine: each connection starts as HTTP/1.1 (src/http/h1/) and becomes an
 * HTTP/2 one (_bun-http2-connection.ts) when its client says so: by the HTTP/2 connection preface as its first
 * bytes (h2c with prior knowledge, from the peers of --forwarded-allow-ips only; others get 400 and the
 * invalid-request line, as on node-http), or by choosing `h2` in the TLS handshake (ALPN). Used only with HTTP/2 on
 * (`--http-protocols` with h2c, or h2 with --certfile): otherwise the engine gives its sockets the HTTP/1.1
 * connection itself, and an HTTP/1.1 request costs nothing more.
 */
import { invalidRequestLine, type Logger } from '../glogging.ts';
import { rawErrorAnswer } from '../http/app-response.ts';
import type { H1Connection } from '../http/h1/connection.ts';
import type { CleartextProtocols } from '../http/http-protocols.ts';
import { NOT_A_PREFACE, prefaceVerdict, UNTRUSTED_PREFACE } from '../http/http2-preface.ts';
import type { Http2Connections } from '../http/node/http2-server.ts';
import type { PeerMatcher } from '../http/trusted-peers.ts';
import type { RemoteAddress } from '../http/types.ts';
import { BunHttp2Connection } from './_bun-http2-connection.ts';
import type { BunByteSocket } from './_bun-socket-duplex.ts';

/** What the engine's socket events, sweeps and drain ask of a connection, whatever its protocol. */
export type ServedConnection = Pick<H1Connection,
  'idleSince' | 'onData' | 'onDrain' | 'onEnd' | 'onClose' | 'drain' | 'closeIfIdle' | 'abortIfStuck' | 'abortIfWaiting'>;

/** What the switch needs to know, the same for every connection of a worker. */
export interface Http2Switching {
  http2: Http2Connections;
  /** What plain sockets serve; undefined with TLS, where ALPN decides (toHttp2()). */
  cleartext?: CleartextProtocols;
  /** `--forwarded-allow-ips`, for h2c. */
  trusted: PeerMatcher;
  logger: Logger;
  onError: (message: string, error: unknown) => void;
}

const REFUSAL = Buffer.from(rawErrorAnswer(400), 'latin1');

/** A connection that speaks HTTP/1.1 or HTTP/2, whichever its client chose. */
export class ProtocolSwitch implements ServedConnection {
  private readonly socket: BunByteSocket;
  private readonly remoteAddr: RemoteAddress;
  private readonly secure: boolean;
  private readonly switching: Http2Switching;
  private readonly h1: H1Connection;
  /** The connection serving the client: the HTTP/1.1 one until the client speaks HTTP/2. */
  private current: ServedConnection;
  /** The first bytes, while they may still be the preface (h2c only). */
  private seen?: Uint8Array;
  private undecided: boolean;

  constructor(socket: BunByteSocket, remoteAddr: RemoteAddress, secure: boolean, h1: H1Connection, switching: Http2Switching) {
    this.socket = socket;
    this.remoteAddr = remoteAddr;
    this.secure = secure;
    this.switching = switching;
    this.h1 = this.current = h1;
    this.undecided = switching.cleartext !== undefined;
  }

  get idleSince(): number | undefined {
    return this.current.idleSince;
  }

  /** The client chose `h2` by ALPN: the connection is HTTP/2 from its first byte. */
  toHttp2(): void {
    this.undecided = false;
    this.switchToHttp2();
  }

  onData(data: Uint8Array): void {
    if (this.undecided) this.readPreface(data);
    else this.current.onData(data);
  }

  onDrain(): void {
    this.current.onDrain();
  }

  onEnd(): void {
    this.current.onEnd();
  }

  onClose(): void {
    this.current.onClose();
  }

  drain(graceMs: number, idleGraceMs: number): void {
    this.current.drain(graceMs, idleGraceMs);
  }

  closeIfIdle(graceMs: number): void {
    this.current.closeIfIdle(graceMs);
  }

  abortIfStuck(now: number, writeLimitMs: number): void {
    this.current.abortIfStuck(now, writeLimitMs);
  }

  abortIfWaiting(): void {
    this.current.abortIfWaiting();
  }

  /** Gathers the first bytes until they are the preface or cannot be, and routes the connection then. */
  private readPreface(data: Uint8Array): void {
    const bytes = this.seen ? Buffer.concat([this.seen, data]) : data;
    const verdict = prefaceVerdict(bytes);
    if (!verdict) {
      this.seen = bytes;
      return;
    }
    this.undecided = false;
    this.seen = undefined;
    const { cleartext, trusted } = this.switching;
    const { hostname, transport } = this.remoteAddr;
    if (verdict === 'h1') {
      if (cleartext!.h1) this.h1.onData(bytes);
      else this.refuse(NOT_A_PREFACE);
    } else if (transport === 'tcp' && !trusted(hostname)) {
      this.refuse(UNTRUSTED_PREFACE);
    } else {
      this.switchToHttp2(bytes);
    }
  }

  /** Hands the connection to the HTTP/2 server; the HTTP/1.1 connection, which has served nothing, is let go. */
  private switchToHttp2(seen?: Uint8Array): void {
    const { http2, onError } = this.switching;
    this.h1.onClose();
    const connection = new BunHttp2Connection(this.socket, this.remoteAddr, this.secure, onError);
    this.current = connection;
    connection.start(http2, seen);
  }

  /** Answers 400 (logged) and closes: the client's first bytes are not what this socket serves it. */
  private refuse(reason: string): void {
    // The HTTP/1.1 connection reads nothing more that the client sends.
    this.h1.onClose();
    this.switching.logger.warning(invalidRequestLine(this.remoteAddr.hostname || undefined, reason));
    this.socket.write(REFUSAL);
    this.socket.end();
  }
}
