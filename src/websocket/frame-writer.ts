/**
 * Encodes the server's WebSocket frames (RFC 6455 §5.2): unmasked, never fragmented. A small payload goes out in
 * one buffer with its header; a large one as the header and the payload itself, without copying it.
 */
import { OPCODE } from './frame-parser.ts';

/** Above this a payload is not copied behind its header. */
const COPY_LIMIT = 16 * 1024;

function headerFor(opcode: number, length: number, extra: number): Buffer {
  const size = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(size + extra);
  frame[0] = 0x80 | opcode;
  if (size === 2) frame[1] = length;
  else if (size === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  return frame;
}

/** The frame(s) of one message or control frame, as buffers to write in order. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array[] {
  const length = payload.byteLength;
  if (length > COPY_LIMIT) return [headerFor(opcode, length, 0), payload];
  const frame = headerFor(opcode, length, length);
  frame.set(payload, frame.byteLength - length);
  return [frame];
}

/** A text message's frame, its UTF-8 written straight behind the header. */
export function encodeText(text: string): Uint8Array[] {
  const length = Buffer.byteLength(text);
  if (length > COPY_LIMIT) return encodeFrame(OPCODE.text, Buffer.from(text));
  const frame = headerFor(OPCODE.text, length, length);
  frame.write(text, frame.byteLength - length);
  return [frame];
}

/** A close frame's payload: the code, then the reason (cut to fit a control frame's 125 bytes). */
export function closePayload(code: number, reason: string): Buffer {
  if (code === 1005) return Buffer.alloc(0);
  const payload = Buffer.alloc(2 + Math.min(Buffer.byteLength(reason), 123));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}
