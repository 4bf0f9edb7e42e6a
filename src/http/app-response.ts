/**
 * What every engine checks and makes of the app's answer: a throw, a rejected promise or a value that is not a
 * Response becomes a logged 500, and the worker lives on.
 */

/** Accepts any Fetch Response, also one made by another copy of the Response class (e.g. undici's). */
export function isResponse(value: unknown): value is Response {
  const candidate = value as Response | null;
  return typeof candidate?.status === 'number' && typeof candidate.headers?.get === 'function' && 'body' in candidate;
}

/** A plain-text error response. */
export function errorResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

/** The error for a handler that returned something else than a Response. */
export function notAResponse(value: unknown): TypeError {
  return new TypeError(`the app's fetch handler returned ${Object.prototype.toString.call(value)}, not a Response`);
}
