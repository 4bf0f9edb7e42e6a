/**
 * Tells a response body that is already complete from one still being produced, without waiting for I/O: a body
 * made from a string, JSON or bytes reports its end a microtask or two after its only chunk (Node, Deno and Bun
 * alike), while a stream the app feeds later (SSE) does not. Servers use it to give the first kind a
 * Content-Length and to send the second kind's first chunk at once.
 */

/** The read's result if it settles within a few microtasks, else undefined (the read stays usable). */
export function readIfReady<T>(read: Promise<T>): Promise<T | undefined> {
  const later = Promise.resolve(undefined).then(() => undefined).then(() => undefined);
  return Promise.race([read, later]);
}
