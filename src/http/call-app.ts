/**
 * Calls the app's Fetch handler the same way in every engine: a throw, a rejected promise or a value that is
 * not a Response becomes a logged 500, and the worker lives on.
 */
import type { Logger } from '../glogging.ts';
import type { FetchHandler, ServeInfo } from './types.ts';

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

/** The handler's Response, or a 500 when the handler fails (the failure is logged with the request line). */
export async function callApp(handler: FetchHandler, request: Request, info: ServeInfo, logger: Logger): Promise<Response> {
  try {
    const response = await handler(request, info);
    if (!isResponse(response)) throw notAResponse(response);
    return response;
  } catch (error) {
    logger.exception(`Error handling request ${request.method} ${request.url}`, error);
    return errorResponse(500, 'Internal Server Error');
  }
}
