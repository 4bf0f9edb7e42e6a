/**
 * The control socket's wire format, Gunicorn's: each message is a 4-byte big-endian length, then that many bytes
 * of UTF-8 JSON. A request is `{id, command, args}`, its reply `{id, ok, result}` or `{id, ok: false, error}`.
 */

/** A frame longer than this is refused (requests are a few dozen bytes; a `stats` reply of 1000 workers fits). */
export const MAX_FRAME_BYTES = 1 << 20;

/** A request from `tsgunicorn ctl`. */
export interface ControlRequest {
  id: number;
  command: string;
  args: string[];
}

/** The master's answer to one request. */
export type ControlReply = { id: number | null; ok: true; result: unknown } | { id: number | null; ok: false; error: string };

/** One message as a frame. */
export function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Thrown for a frame that cannot be read; the connection is closed after the error reply. */
export class FrameError extends Error {}

/**
 * Cuts a byte stream into frames: push() the bytes as they come, and get the complete frames' JSON values.
 * A frame above MAX_FRAME_BYTES throws a FrameError (before its body arrives); bad JSON in a frame yields a
 * FrameError value in its place, so that the stream stays usable.
 */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the values of the frames they complete. */
  push(chunk: Buffer): (unknown | FrameError)[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const values: (unknown | FrameError)[] = [];
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) throw new FrameError(`frame of ${length} bytes is above the limit of ${MAX_FRAME_BYTES}`);
      if (this.buffered.length < 4 + length) break;
      const body = this.buffered.subarray(4, 4 + length).toString('utf8');
      this.buffered = this.buffered.subarray(4 + length);
      try {
        values.push(JSON.parse(body));
      } catch {
        values.push(new FrameError('the frame is not JSON'));
      }
    }
    return values;
  }
}

/** Checks that a decoded frame is a request; returns it, or a FrameError saying what is wrong. */
export function asControlRequest(value: unknown): ControlRequest | FrameError {
  if (value instanceof FrameError) return value;
  const request = value as Partial<ControlRequest> | null;
  if (typeof request !== 'object' || request === null || typeof request.command !== 'string') {
    return new FrameError('expected {"id", "command", "args"}');
  }
  const args = request.args ?? [];
  if (!Array.isArray(args) || args.some((arg) => typeof arg !== 'string' && typeof arg !== 'number')) {
    return new FrameError('"args" must be a list of strings');
  }
  return { id: typeof request.id === 'number' ? request.id : 0, command: request.command, args: args.map(String) };
}
