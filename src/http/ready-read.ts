/**
 * Tells a response body that is already complete from one still being produced, without waiting for I/O: a body
 * made from a string, JSON or bytes (and a stream the app fills at once) ends before the event loop turns to I/O
 * again, while a stream the app feeds later (Server-Sent Events) does not. Servers use it to give the first kind
 * a Content-Length and to send the second kind's first chunk at once.
 */
import { clearImmediate, setImmediate } from 'node:timers';

/** The read's result if it settles before the event loop turns to I/O again, else undefined (the read stays usable). */
export function readIfReady<T>(read: Promise<T>): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const turnEnd = setImmediate(resolve, undefined);
    read.then(
      (value) => {
        clearImmediate(turnEnd);
        resolve(value);
      },
      (error: unknown) => {
        clearImmediate(turnEnd);
        reject(error);
      },
    );
  });
}

/**
 * The length a body would have on the wire, for a HEAD response: the body is read while its chunks are ready
 * (as a GET's body would be, to give it a Content-Length) up to `limit` bytes, and cancelled. Undefined when the
 * body is still being produced or longer than `limit`: the length is not known then.
 */
export async function readyBodyLength(body: ReadableStream<Uint8Array>, limit: number): Promise<number | undefined> {
  const reader = body.getReader();
  let length = 0;
  try {
    for (;;) {
      const chunk = await readIfReady(reader.read());
      if (chunk === undefined || length > limit) return undefined;
      if (chunk.done) return length;
      length += chunk.value.byteLength;
    }
  } catch {
    return undefined;
  } finally {
    reader.cancel().catch(() => {});
  }
}
