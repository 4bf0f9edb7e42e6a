/**
 * What the native servers (Deno.serve, Bun.serve) get wrong about the app's response, put right before the
 * response is handed to them, under the rules of src/http/response-policy.ts. Each engine names the rules its
 * server needs; a rule costs per response only where it is on.
 */
import type { Logger } from '../glogging.ts';
import { errorResponse } from '../http/app-response.ts';
import {
  checkUnusualValue, hasCloseOption, HOP_BY_HOP_FIELDS, httpDate, InvalidResponseFieldError, isHopByHop, isPlainValue,
} from '../http/response-policy.ts';

/**
 * The corrections a native server needs beyond the ones every native server gets: every value checked and the
 * hop-by-hop fields dropped (the servers pass both on as they are: Bun.serve sends a control character in a
 * value; Deno.serve panics on one and the whole worker dies).
 */
export interface NativeResponseRules {
  /**
   * Visits the fields the server will send, as `(value, name)`, names in any case; by default
   * `response.headers.forEach`.
   */
  forEachField?: (response: Response, visit: (value: string, name: string) => void) => void;
  /** HEAD gets a Date and keeps the app's Content-Length (Bun.serve sends no Date, and chunked for a stream). */
  fixHead: boolean;
}

/** Edits a response's headers; a response with immutable headers (Response.redirect, fetch) is copied first. */
export function withEditedHeaders(response: Response, edit: (headers: Headers) => void): Response {
  try {
    edit(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    edit(copy.headers);
    return copy;
  }
}

/** Set by inspectField: the first field HTTP/1.1 cannot carry, and whether a hop-by-hop field is present. */
let invalidField: InvalidResponseFieldError | undefined;
let hasHopByHop = false;

/** One field of the response, as Headers.forEach gives it (forEach, not the iterator: cheaper on Deno). */
function inspectField(value: string, name: string): void {
  if (isHopByHop(name.toLowerCase())) hasHopByHop = true;
  if (invalidField === undefined && !isPlainValue(value)) {
    try {
      checkUnusualValue(name, value);
    } catch (error) {
      invalidField = error as InvalidResponseFieldError;
    }
  }
}

/** Drops the hop-by-hop fields; an app's `Connection: close` becomes the server's own. */
function dropHopByHop(headers: Headers): void {
  const close = hasCloseOption(headers.get('connection') ?? '');
  for (const name of HOP_BY_HOP_FIELDS) headers.delete(name);
  if (close) headers.set('connection', 'close');
}

/** A HEAD response as Bun.serve should send it: with a Date, and the app's Content-Length without the body. */
function fixedHead(response: Response): Response {
  const { headers } = response;
  if (headers.has('content-length') && response.body) {
    response.body.cancel().catch(() => {});
    return new Response(null, { status: response.status, statusText: response.statusText, headers: withDate(headers) });
  }
  return headers.has('date') ? response : withEditedHeaders(response, (editable) => editable.set('date', httpDate()));
}

/** Visits a response's fields through its Headers. */
function forEachHeader(response: Response, visit: (value: string, name: string) => void): void {
  response.headers.forEach(visit);
}

function withDate(headers: Headers): Headers {
  const copy = new Headers(headers);
  if (!copy.has('date')) copy.set('date', httpDate());
  return copy;
}

/** The correction of every response for a native server with these rules and `--server-header`. */
export function responseCorrection(
  rules: NativeResponseRules, serverHeader: string | null, logger: Logger,
): (request: Request, response: Response) => Response {
  const setServer = (headers: Headers) => headers.set('server', serverHeader!);
  const forEachField = rules.forEachField ?? forEachHeader;
  return (request, response) => {
    invalidField = undefined;
    hasHopByHop = false;
    forEachField(response, inspectField);
    const invalid = invalidField as InvalidResponseFieldError | undefined;
    if (invalid) {
      logger.error(`Error handling request ${request.method} ${request.url}: ${invalid.message}`);
      response.body?.cancel().catch(() => {});
      response = errorResponse(500, 'Internal Server Error');
    } else if (hasHopByHop) {
      response = withEditedHeaders(response, dropHopByHop);
    }
    if (serverHeader !== null && !response.headers.has('server')) response = withEditedHeaders(response, setServer);
    if (rules.fixHead && request.method === 'HEAD') response = fixedHead(response);
    return response;
  };
}
