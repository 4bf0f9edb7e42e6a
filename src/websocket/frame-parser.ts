/**
 * Reads a client's WebSocket frames (RFC 6455 §5) from the bytes of a connection, in any chunking: unmasks them,
 * joins fragments into messages, checks text for UTF-8, and reports protocol violations as the close code they
 * call for (1002 protocol error, 1007 bad UTF-8, 1009 message too big). A small payload is unmasked into a buffer
 * of its size allocated when its header has been read; a large one into a copy of each chunk as it arrives, joined
 * at its end, so that memory follows the bytes received, not the length a frame header announces.
 */

/** Opcodes (RFC 6455 §5.2). */
export const OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** What the parser reports. */
export interface FrameEvents {
  /** A whole text or binary message. */
  onMessage(message: string | Buffer): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /** The client's close frame: its code (1005 when it gave none) and reason. */
  onClose(code: number, reason: string): void;
}

/** A frame that breaks the protocol, with the close code to answer it with. */
export class FrameError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/** Close codes a client may send (RFC 6455 §7.4: 1004-1006 and 1015 are never sent; 3000-4999 are for apps). */
function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new FrameError(1007, `${what} is not valid UTF-8`);
  }
}

/** A Buffer over the whole of `bytes`' own ArrayBuffer (an app reading `message.buffer` gets exactly the message). */
function ownBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The most bytes of a frame header: 2, 8 of extended length, 4 of mask. */
const MAX_HEADER = 14;
/** Control frames carry at most 125 bytes (RFC 6455 §5.5). */
const MAX_CONTROL_PAYLOAD = 125;
/** Payloads up to this are read into a buffer allocated from their header's length. */
const PREALLOCATE_LIMIT = 64 * 1024;

/** `chunks` joined into one buffer of `length` bytes. */
function joined(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const whole = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.byteLength;
  }
  return whole;
}

/** The frames of one connection. */
export class FrameParser {
  private readonly events: FrameEvents;
  private readonly maxMessage: number;
  private readonly header = new Uint8Array(MAX_HEADER);
  private headerLength = 0;
  /** The frame whose payload is being read, once its header is complete. */
  private opcode = 0;
  private fin = false;
  private readonly mask = new Uint8Array(4);
  /** A payload is being read: its length, the bytes read so far, and where they go (see the module comment). */
  private inPayload = false;
  private payloadLength = 0;
  private payloadOffset = 0;
  private payload?: Uint8Array;
  private payloadChunks: Uint8Array[] = [];
  /** The opcode of the fragmented message being read (0: none), its fragments and their size. */
  private messageOpcode = 0;
  private fragments: Uint8Array[] = [];
  private messageBytes = 0;

  /** `maxMessage`: the largest message in bytes (--ws-max-message). */
  constructor(events: FrameEvents, maxMessage: number) {
    this.events = events;
    this.maxMessage = maxMessage;
  }

  /** Reads `data`; throws a FrameError on a violation (frames before it have been reported). */
  feed(data: Uint8Array): void {
    let offset = 0;
    while (offset < data.byteLength) {
      if (!this.inPayload) {
        offset = this.readHeader(data, offset);
        continue;
      }
      const count = Math.min(this.payloadLength - this.payloadOffset, data.byteLength - offset);
      const start = this.payloadOffset;
      const target = this.payload ?? new Uint8Array(count);
      const base = this.payload ? start : 0;
      const mask = this.mask;
      for (let i = 0; i < count; i++) target[base + i] = data[offset + i] ^ mask[(start + i) & 3];
      if (!this.payload) this.payloadChunks.push(target);
      this.payloadOffset += count;
      offset += count;
      if (this.payloadOffset === this.payloadLength) this.frameComplete();
    }
  }

  /** Takes header bytes from `data`; once the header is whole, checks it and prepares the payload. */
  private readHeader(data: Uint8Array, offset: number): number {
    const header = this.header;
    // Two bytes tell the header's whole length.
    while (this.headerLength < 2 && offset < data.byteLength) header[this.headerLength++] = data[offset++];
    if (this.headerLength < 2) return offset;
    // Checked as soon as the first two bytes are in: an unmasked frame's header is shorter than a masked one's.
    if (this.headerLength === 2) this.checkFirstBytes();
    const lengthCode = header[1] & 0x7f;
    const needed = 2 + (lengthCode === 126 ? 2 : lengthCode === 127 ? 8 : 0) + 4;
    while (this.headerLength < needed && offset < data.byteLength) header[this.headerLength++] = data[offset++];
    if (this.headerLength < needed) return offset;
    this.headerLength = 0;
    this.startFrame(lengthCode, needed);
    return offset;
  }

  private checkFirstBytes(): void {
    const header = this.header;
    if ((header[0] & 0x70) !== 0) throw new FrameError(1002, 'a frame has reserved bits set (no extension was negotiated)');
    if ((header[1] & 0x80) === 0) throw new FrameError(1002, 'a client frame is not masked');
  }

  private startFrame(lengthCode: number, headerBytes: number): void {
    const header = this.header;
    this.fin = (header[0] & 0x80) !== 0;
    const opcode = header[0] & 0x0f;
    let length = lengthCode;
    if (lengthCode === 126) length = (header[2] << 8) | header[3];
    else if (lengthCode === 127) {
      const high = ((header[2] << 24) | (header[3] << 16) | (header[4] << 8) | header[5]) >>> 0;
      const low = ((header[6] << 24) | (header[7] << 16) | (header[8] << 8) | header[9]) >>> 0;
      if (high >= 0x200000) throw new FrameError(1009, 'a frame is longer than any message allowed');
      length = high * 2 ** 32 + low;
    }
    this.mask.set(header.subarray(headerBytes - 4, headerBytes));
    if (opcode >= 8) {
      if (opcode > OPCODE.pong) throw new FrameError(1002, `unknown opcode ${opcode}`);
      if (!this.fin) throw new FrameError(1002, 'a control frame is fragmented');
      if (length > MAX_CONTROL_PAYLOAD) throw new FrameError(1002, 'a control frame carries more than 125 bytes');
    } else if (opcode === OPCODE.continuation) {
      if (this.messageOpcode === 0) throw new FrameError(1002, 'a continuation frame starts no message');
    } else if (opcode === OPCODE.text || opcode === OPCODE.binary) {
      if (this.messageOpcode !== 0) throw new FrameError(1002, 'a new message starts before the fragmented one ended');
    } else {
      throw new FrameError(1002, `unknown opcode ${opcode}`);
    }
    if (opcode < 8 && this.messageBytes + length > this.maxMessage) {
      throw new FrameError(1009, `a message is larger than --ws-max-message (${this.maxMessage} bytes)`);
    }
    this.opcode = opcode;
    this.inPayload = true;
    this.payloadLength = length;
    this.payloadOffset = 0;
    this.payload = length <= PREALLOCATE_LIMIT ? new Uint8Array(length) : undefined;
    if (length === 0) this.frameComplete();
  }

  private frameComplete(): void {
    const payload = this.payload ?? joined(this.payloadChunks, this.payloadLength);
    this.inPayload = false;
    this.payload = undefined;
    this.payloadChunks = [];
    const opcode = this.opcode;
    if (opcode >= 8) {
      this.controlFrame(opcode, payload);
      return;
    }
    if (opcode !== OPCODE.continuation) this.messageOpcode = opcode;
    this.messageBytes += payload.byteLength;
    if (!this.fin) {
      this.fragments.push(payload);
      return;
    }
    let message = payload;
    if (this.fragments.length > 0) {
      this.fragments.push(payload);
      message = joined(this.fragments, this.messageBytes);
      this.fragments = [];
    }
    const messageOpcode = this.messageOpcode;
    this.messageOpcode = 0;
    this.messageBytes = 0;
    this.events.onMessage(messageOpcode === OPCODE.text ? decodeUtf8(message, 'a text message') : ownBuffer(message));
  }

  private controlFrame(opcode: number, payload: Uint8Array): void {
    if (opcode === OPCODE.ping) return this.events.onPing(ownBuffer(payload));
    if (opcode === OPCODE.pong) return this.events.onPong(ownBuffer(payload));
    if (payload.byteLength === 0) return this.events.onClose(1005, '');
    if (payload.byteLength === 1) throw new FrameError(1002, 'a close frame carries one byte');
    const code = (payload[0] << 8) | payload[1];
    if (!isSendableCloseCode(code)) throw new FrameError(1002, `a close frame has the invalid code ${code}`);
    this.events.onClose(code, decodeUtf8(payload.subarray(2), 'a close reason'));
  }
}
