/**
 * A server-side WebSocket over a byte transport, for the engines that speak HTTP/1.1 themselves (node-http,
 * bun-listen): the app's `websocket` handler sees it as a ServerWebSocket-like object (src/websocket/app-handler.ts).
 * Frames are read by FrameParser and written by frame-writer.ts; a violation is answered with its close code and
 * logged as an invalid request; the closing handshake is RFC 6455's (the server closes the TCP connection once
 * both close frames have passed). Backpressure: send() returns -1 while bytes wait in the transport and the app's
 * `drain` is called once they have gone; a client that leaves more than --ws-max-message bytes unread is cut.
 */
import { invalidRequestLine, type Logger } from '../glogging.ts';
import { type AppWebSocket, callApp, type WebSocketHandler } from './app-handler.ts';
import { FrameError, FrameParser, OPCODE } from './frame-parser.ts';
import { closePayload, encodeFrame, encodeText } from './frame-writer.ts';

/** The socket under a WebSocket, as the engine provides it. */
export interface WebSocketTransport {
  /** Writes `data`; what the socket does not take at once stays queued in the transport. */
  write(data: Uint8Array): void;
  /** Bytes queued and not yet taken by the client. */
  bufferedAmount(): number;
  /** Closes after what has been written. */
  end(): void;
  /** Closes at once. */
  destroy(): void;
  readonly remoteAddress: string;
}

/** How long the client has to answer the server's close frame before the connection is cut. */
const CLOSE_TIMEOUT_MS = 5000;

const READY = { open: 1, closing: 2, closed: 3 } as const;

/** What a connection needs besides its transport. */
export interface WebSocketOptions {
  handler: WebSocketHandler;
  /** `ws.data`, as the app gave it to upgrade(). */
  data: unknown;
  /** --ws-max-message: the largest message read, and the most bytes left unread by the client. */
  maxMessage: number;
  logger: Logger;
  /** Called once, when the connection has closed. */
  onClosed(socket: WebSocketConnection): void;
}

/** One upgraded connection. The engine feeds it the transport's events. */
export class WebSocketConnection implements AppWebSocket {
  readonly data: unknown;
  readonly remoteAddress: string;
  /** Bun's default binary type: messages arrive as Buffers. */
  readonly binaryType = 'nodebuffer';
  readyState: number = READY.open;
  private readonly transport: WebSocketTransport;
  private readonly options: WebSocketOptions;
  private readonly parser: FrameParser;
  private readonly reportError = (error: unknown) => this.options.logger.exception('Error in the app\'s WebSocket handler', error);
  /** A send() returned -1: the app gets `drain` once the transport has taken everything. */
  private awaitingDrain = false;
  /** The close code and reason reported to the app (the first close frame sent or received decides). */
  private closeCode = 1006;
  private closeReason = '';
  private closeTimer?: ReturnType<typeof setTimeout>;
  /**
   * Frames sent while a chunk of the client's bytes is being read (the app answering its messages), written in one
   * go once the chunk has been read: one write per chunk instead of one per message.
   */
  private corked?: Uint8Array[];
  private corkedBytes = 0;
  /** The connection is to end once the corked frames (a close frame last) are written. */
  private endAfterUncork = false;
  /** The client's close frame or a violation has been read: nothing after it is read. */
  private inputEnded = false;

  constructor(transport: WebSocketTransport, options: WebSocketOptions) {
    this.transport = transport;
    this.options = options;
    this.data = options.data;
    this.remoteAddress = transport.remoteAddress;
    this.parser = new FrameParser({
      onMessage: (message) => {
        const { handler } = this.options;
        if (handler.message) callApp(this.reportError, () => handler.message!(this, message));
      },
      onPing: (payload) => {
        this.writeFrame(OPCODE.pong, payload);
        const { handler } = this.options;
        if (handler.ping) callApp(this.reportError, () => handler.ping!(this, payload));
      },
      onPong: (payload) => {
        const { handler } = this.options;
        if (handler.pong) callApp(this.reportError, () => handler.pong!(this, payload));
      },
      onClose: (code, reason) => this.closeWith(code, reason),
    }, options.maxMessage);
  }

  /** The handshake is done: tells the app. */
  open(): void {
    const { handler } = this.options;
    if (handler.open) callApp(this.reportError, () => handler.open!(this));
  }

  /** Bytes from the client. */
  onData(data: Uint8Array): void {
    if (this.readyState === READY.closed || this.inputEnded) return;
    this.corked = [];
    try {
      this.parser.feed(data);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.options.logger.warning(invalidRequestLine(this.remoteAddress, `WebSocket: ${error.message}`));
      this.closeWith(error.code, error.code === 1009 ? 'Message Too Big' : 'Protocol Error');
    } finally {
      this.uncork();
    }
  }

  /** Writes the frames sent while reading a chunk, in one write. */
  private uncork(): void {
    const frames = this.corked!;
    this.corked = undefined;
    const bytes = this.corkedBytes;
    this.corkedBytes = 0;
    if (frames.length > 0) {
      this.transport.write(frames.length === 1 ? frames[0] : Buffer.concat(frames, bytes));
      if (this.transport.bufferedAmount() > 0) this.awaitingDrain = true;
    }
    if (this.endAfterUncork) this.transport.end();
  }

  /** Closes the connection after what has been written, the corked frames included. */
  private end(): void {
    if (this.corked) this.endAfterUncork = true;
    else this.transport.end();
  }

  /** Writes a frame, or keeps it for the write after the chunk being read. */
  private output(frame: Uint8Array): void {
    if (this.corked) {
      this.corked.push(frame);
      this.corkedBytes += frame.byteLength;
    } else {
      this.transport.write(frame);
    }
  }

  /** The transport has taken everything queued. */
  onDrain(): void {
    if (!this.awaitingDrain || this.readyState !== READY.open || this.transport.bufferedAmount() > 0) return;
    this.awaitingDrain = false;
    const { handler } = this.options;
    if (handler.drain) callApp(this.reportError, () => handler.drain!(this));
  }

  /** The transport has closed (either side): the app hears of it once. */
  onClose(): void {
    if (this.readyState === READY.closed) return;
    this.readyState = READY.closed;
    clearTimeout(this.closeTimer);
    const { handler } = this.options;
    if (handler.close) callApp(this.reportError, () => handler.close!(this, this.closeCode, this.closeReason));
    this.options.onClosed(this);
  }

  send(message: string | ArrayBufferLike | ArrayBufferView): number {
    return typeof message === 'string' ? this.sendText(message) : this.sendBinary(message);
  }

  /** Sends a text message (Bun's sendText). */
  sendText(text: string): number {
    return this.sendFrames(encodeText(text));
  }

  /** Sends a binary message (Bun's sendBinary). */
  sendBinary(data: ArrayBufferLike | ArrayBufferView): number {
    return this.sendFrames(encodeFrame(OPCODE.binary, bytesOf(data)));
  }

  ping(data: string | ArrayBufferLike | ArrayBufferView = ''): number {
    return this.sendFrames(encodeFrame(OPCODE.ping, controlPayload(data)));
  }

  pong(data: string | ArrayBufferLike | ArrayBufferView = ''): number {
    return this.sendFrames(encodeFrame(OPCODE.pong, controlPayload(data)));
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState !== READY.open) return;
    this.startClosing(code, reason);
  }

  /** Closes at once, without the closing handshake. */
  terminate(): void {
    this.transport.destroy();
  }

  getBufferedAmount(): number {
    return this.transport.bufferedAmount() + this.corkedBytes;
  }

  /** Sends the server's close frame and waits (bounded) for the client's. */
  private startClosing(code: number, reason: string): void {
    this.readyState = READY.closing;
    this.closeCode = code;
    this.closeReason = reason;
    this.writeFrame(OPCODE.close, closePayload(code, reason));
    this.closeTimer = setTimeout(() => this.transport.destroy(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref?.();
  }

  /**
   * A violation, or the client's close frame: the close frame with its code (the client's own code unless the
   * server closed first), then the TCP close without waiting for more.
   */
  private closeWith(code: number, reason: string): void {
    if (this.readyState === READY.open) {
      this.closeCode = code;
      this.closeReason = reason;
      this.writeFrame(OPCODE.close, closePayload(code, reason));
    }
    this.readyState = READY.closing;
    this.inputEnded = true;
    this.end();
  }

  private sendFrames(frames: Uint8Array[]): number {
    if (this.readyState !== READY.open) return 0;
    if (this.getBufferedAmount() > this.options.maxMessage) {
      // A client that does not read: nothing more is queued for it, it is cut (Bun's closeOnBackpressureLimit).
      this.options.logger.warning(`WebSocket client ip=${this.remoteAddress || '-'} left more than ` +
        `${this.options.maxMessage} bytes unread (--ws-max-message); connection closed`);
      this.transport.destroy();
      return 0;
    }
    let bytes = 0;
    for (const frame of frames) {
      this.output(frame);
      bytes += frame.byteLength;
    }
    if (this.corked || this.transport.bufferedAmount() === 0) return bytes;
    this.awaitingDrain = true;
    return -1;
  }

  private writeFrame(opcode: number, payload: Uint8Array): void {
    for (const frame of encodeFrame(opcode, payload)) this.output(frame);
  }
}

/** A ping's or pong's payload as the app gives it, cut to the 125 bytes a control frame carries. */
function controlPayload(data: string | ArrayBufferLike | ArrayBufferView): Uint8Array {
  return (typeof data === 'string' ? Buffer.from(data) : bytesOf(data)).subarray(0, 125);
}

/** The bytes of a binary message as the app gives them. */
function bytesOf(data: ArrayBufferLike | ArrayBufferView): Uint8Array {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}
