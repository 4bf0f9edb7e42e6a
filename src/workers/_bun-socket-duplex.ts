/**
 * A node:stream Duplex over a Bun.listen socket, for node:http2, which serves a stream handed to it and has no
 * use for Bun's callback sockets (Bun 1.4.5's node:http2 serves a Duplex as it serves a net.Socket). The engine
 * feeds the socket's events in (onData, onDrain, onEnd, onClose); backpressure holds both ways: the socket stops
 * being read while the readable side is full (push() returned false) until node:http2 reads again, and a write the
 * socket does not take whole is finished from its drain event before the next one is accepted.
 */
import type { X509Certificate } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { RemoteAddress } from '../http/types.ts';

/** What the Duplex needs of a Bun socket. */
export interface BunByteSocket {
  /** Writes what the kernel takes now and returns how many bytes that was (-1 once closed). */
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  /** TLS: whether the client certificate verified, and the certificate (Bun.listen's TLS sockets). */
  readonly authorized?: boolean;
  getPeerX509Certificate?(): X509Certificate | undefined;
}

/** A Bun socket as a Duplex, with the net.Socket fields the node:http adapter and node:http2 read. */
export class BunSocketDuplex extends Duplex {
  private readonly socket: BunByteSocket;
  /** The client, as the engine knows it (a PROXY header may have named it). */
  private readonly remoteAddr: RemoteAddress;
  /** TLS: node:http2 gives its requests `:scheme` https, the adapter `https://` URLs. */
  readonly encrypted: boolean;
  /** The rest of a write the socket has not taken, and the callback that accepts the next write. */
  private unsent?: Uint8Array;
  private written?: (error?: Error | null) => void;
  /** When bytes were first left unsent with none taken since (performance.now()); undefined while they flow. */
  stuckSince: number | undefined;
  private readPaused = false;
  private socketClosed = false;

  constructor(socket: BunByteSocket, remoteAddr: RemoteAddress, encrypted: boolean) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    this.remoteAddr = remoteAddr;
    this.encrypted = encrypted;
  }

  /** TLS: whether the client's certificate verified, as node:tls's TLSSocket says (info.clientCertificate). */
  get authorized(): boolean {
    return this.socket.authorized ?? false;
  }

  /** TLS: the client's certificate, read from the Bun socket (info.clientCertificate on HTTP/2 streams). */
  getPeerX509Certificate(): X509Certificate | undefined {
    return this.socket.getPeerX509Certificate?.();
  }

  /** The client's IP address; undefined on a unix socket (as net.Socket has it). */
  get remoteAddress(): string | undefined {
    return this.remoteAddr.transport === 'unix' ? undefined : this.remoteAddr.hostname;
  }

  get remotePort(): number | undefined {
    return this.remoteAddr.transport === 'unix' ? undefined : this.remoteAddr.port;
  }

  /** Bytes from the socket; past the readable side's high-water mark the socket is no longer read. */
  onData(data: Uint8Array): void {
    if (!this.push(data) && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  /** The socket can take more bytes: the rest of the last write goes, then the next write is accepted. */
  onDrain(): void {
    const data = this.unsent;
    if (!data) return;
    const taken = this.socket.write(data);
    if (taken < 0) return;
    if (taken < data.byteLength) {
      this.unsent = data.subarray(taken);
      if (taken > 0) this.stuckSince = performance.now();
      return;
    }
    this.unsent = undefined;
    this.stuckSince = undefined;
    const written = this.written!;
    this.written = undefined;
    written();
  }

  /** The client half-closed. */
  onEnd(): void {
    this.push(null);
  }

  /** The socket is closed (by either side). */
  onClose(): void {
    this.socketClosed = true;
    const written = this.written;
    this.unsent = this.written = undefined;
    written?.(new Error('the client closed the connection'));
    this.destroy();
  }

  override _read(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.socket.resume();
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.send(chunk, callback);
  }

  /** node:http2 writes a frame's head and payload apart: they go to the socket in one write. */
  override _writev(chunks: { chunk: Uint8Array }[], callback: (error?: Error | null) => void): void {
    this.send(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map(({ chunk }) => chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.socketClosed) this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.socketClosed) {
      this.socketClosed = true;
      this.socket.terminate();
    }
    callback(error);
  }

  /** Writes `data`; `callback` runs once the socket has taken all of it. */
  private send(data: Uint8Array, callback: (error?: Error | null) => void): void {
    if (this.socketClosed) {
      callback(new Error('the client closed the connection'));
      return;
    }
    const taken = this.socket.write(data);
    if (taken >= data.byteLength) {
      callback();
      return;
    }
    this.unsent = data.subarray(Math.max(taken, 0));
    this.written = callback;
    this.stuckSince = performance.now();
  }
}
