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
