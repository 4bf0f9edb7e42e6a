/**
 * Reads a client's WebSocket frames (RFC 6455 §5) from the bytes of a connection, in any chunking: unmasks them,
 * joins fragments into messages, checks text for UTF-8, and reports protocol violations as the close code they
 * call for (1002 protocol error, 1007 bad UTF-8, 1009 message too big). A payload is copied once, into a buffer of
 * its own size allocated when its header has been read, so a large message costs no re-copying of partial data.
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
  private payload?: Uint8Array;
  private payloadOffset = 0;
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
      if (this.payload === undefined) {
        offset = this.readHeader(data, offset);
        continue;
      }
      const payload = this.payload;
      const count = Math.min(payload.byteLength - this.payloadOffset, data.byteLength - offset);
      const mask = this.mask;
      const start = this.payloadOffset;
      for (let i = 0; i < count; i++) payload[start + i] = data[offset + i] ^ mask[(start + i) & 3];
      this.payloadOffset += count;
      offset += count;
      if (this.payloadOffset === payload.byteLength) this.frameComplete();
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
    this.payload = new Uint8Array(length);
    this.payloadOffset = 0;
    if (length === 0) this.frameComplete();
  }

  private frameComplete(): void {
    const payload = this.payload!;
    this.payload = undefined;
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
      message = new Uint8Array(this.messageBytes);
      let at = 0;
      for (const fragment of this.fragments) {
        message.set(fragment, at);
        at += fragment.byteLength;
      }
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
