/**
 * An HTTP/2 connection on the bun-listen engine: the Bun socket, as a Duplex (_bun-socket-duplex.ts), served by the
 * worker's node:http2 server (src/http/node/http2-server.ts: the node:http adapter, the limits, the access log, the
 * GOAWAY on drain), and what the engine's sweeps and drain ask of every connection. It counts its streams in flight:
 * without one it is idle, and an idle connection closed by the keep-alive or header timeout gets GOAWAY first
 * (`session.close()`: RFC 9113 section 6.8), as on a drain; with streams in flight, a client that has taken nothing
 * of the written bytes for --write-timeout is cut, and so is an idle one still open a sweep after its GOAWAY.
 */
import type { Socket } from 'node:net';
import type { Http2Connections } from '../http/node/http2-server.ts';
import type { RemoteAddress } from '../http/types.ts';
import { type BunByteSocket, BunSocketDuplex } from './_bun-socket-duplex.ts';

/** The connection of each Duplex, for the adapter's request hooks (which get the Duplex as the request's socket). */
const connections = new WeakMap<object, BunHttp2Connection>();

/** The HTTP/2 connection a request came on (its `socket`), if any. */
export function http2ConnectionOf(socket: object | null | undefined): BunHttp2Connection | undefined {
  return socket ? connections.get(socket) : undefined;
}

/** One HTTP/2 connection of the bun-listen engine. */
export class BunHttp2Connection {
  private readonly duplex: BunSocketDuplex;
  private server?: Http2Connections;
  private streams = 0;
  /** When the connection last became idle (no stream in flight); undefined while busy. */
  idleSince: number | undefined = performance.now();
  private readonly onError: (message: string, error: unknown) => void;

  constructor(socket: BunByteSocket, remoteAddr: RemoteAddress, secure: boolean, onError: (message: string, error: unknown) => void) {
    this.duplex = new BunSocketDuplex(socket, remoteAddr, secure);
    // A write cut by the client's close fails on the Duplex: the connection is gone, its streams end with it.
    this.duplex.on('error', () => {});
    this.onError = onError;
    connections.set(this.duplex, this);
  }

  /** Hands the connection to `server`, with the bytes already read from it (`seen`: the preface, for h2c). */
  start(server: Http2Connections, seen?: Uint8Array): void {
    if (seen) this.duplex.onData(seen);
    // node:http2 serves any Duplex; the node:http adapter reads a net.Socket's fields, which the Duplex has.
    this.server = server;
    server.serve(this.duplex as unknown as Socket);
  }

  /** A stream reached the handler. */
  streamStarted(): void {
    this.streams++;
    this.idleSince = undefined;
  }

  /** A stream's response closed (sent, or reset by its client). */
  streamDone(): void {
    if (--this.streams === 0) this.idleSince = performance.now();
  }

  onData(data: Uint8Array): void {
    this.duplex.onData(data);
  }

  onDrain(): void {
    this.duplex.onDrain();
  }

  onEnd(): void {
    this.duplex.onEnd();
  }

  onClose(): void {
    this.duplex.onClose();
  }

  /**
   * The worker drains: GOAWAY at once (the client opens no new stream, the open ones finish, then the session
   * closes the connection). Unlike an idle HTTP/1.1 connection, no grace is needed: the GOAWAY tells the client
   * which of its streams will be served.
   */
  drain(): void {
    this.server?.goAway(this.duplex);
  }

  /**
   * Closes the connection with GOAWAY if it is idle (the session then closes it). One still open at a later sweep,
   * idle since, has a client that takes nothing of what is written (not even the GOAWAY): it is cut.
   */
  closeIfIdle(): void {
    if (this.idleSince !== undefined && !this.server?.goAway(this.duplex)) this.duplex.destroy();
  }

  /** The header timeout: an HTTP/2 connection waiting for a stream is idle, closed with GOAWAY. */
  abortIfWaiting(): void {
    this.closeIfIdle();
  }

  /** Cuts the connection (logged) if its client has taken none of the bytes written to it for `writeLimitMs`. */
  abortIfStuck(now: number, writeLimitMs: number): void {
    const { stuckSince } = this.duplex;
    if (this.duplex.destroyed || stuckSince === undefined || now - stuckSince < writeLimitMs) return;
    this.onError(`Write timeout: ip=${this.duplex.remoteAddress ?? '-'} took none of the response for ` +
      `${writeLimitMs / 1000} s; connection closed`, undefined);
    this.duplex.destroy();
  }
}
