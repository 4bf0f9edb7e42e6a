/**
 * What every engine checks and makes of the app's answer: a throw, a rejected promise or a value that is not a
 * Response becomes a logged 500, and the worker lives on.
 */

/** Accepts any Fetch Response, also one made by another copy of the Response class (e.g. undici's). */
export function isResponse(value: unknown): value is Response {
  // The runtime's own class first: the shape test reads `headers`, which makes the Headers object of a Response
  // that has none yet (Deno.serve: 0.3 µs more per request, about 5% of what it spends on one).
  if (value instanceof Response) return true;
  const candidate = value as Response | null;
  return typeof candidate?.status === 'number' && typeof candidate.headers?.get === 'function' && 'body' in candidate;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 414: 'URI Too Long',
  417: 'Expectation Failed', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 503: 'Service Unavailable',
};

/** The reason phrase of a status tsgunicorn answers by itself (400 for an unknown one). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? REASONS[400];
}

/**
 * A whole plain-text error answer with `Connection: close`, as latin-1 text for a socket: for refusals written
 * before (or instead of) any HTTP parsing.
 */
export function rawErrorAnswer(status: number): string {
  const body = `${reasonPhrase(status)}\n`;
  return `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body}`;
}

/** A plain-text error response. */
export function errorResponse(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

/** The error for a handler that returned something else than a Response. */
export function notAResponse(value: unknown): TypeError {
  return new TypeError(`the app's fetch handler returned ${Object.prototype.toString.call(value)}, not a Response`);
}
