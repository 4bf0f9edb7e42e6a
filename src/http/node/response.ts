/**
 * Writes a Fetch Response to a node:http ServerResponse. Headers go out with the first body chunk, never later:
 * a streamed body (Server-Sent Events) is flushed chunk by chunk with backpressure, and Content-Length is set
 * only when the length is known without waiting for the body: an explicit header, a body undici knows (string,
 * bytes, Blob, …), or a stream that is already complete (src/http/ready-read.ts; how a string or bytes body
 * looks on Deno and Bun).
 */
import type http from 'node:http';
import { Buffer } from 'node:buffer';
import { readIfReady, readyBodyLength } from '../ready-read.ts';
import {
  checkFieldName, checkUnusualValue, fieldsNeedNameCheck, hasCloseOption, isHopByHop, isPlainValue,
} from '../response-policy.ts';
import { knownBodyOf } from './known-body.ts';

/** What was written for one response, for the access log. */
export interface SentResponse {
  /** Body bytes. */
  bytes: number;
  /** The headers, when they went out through writeHead() alone (res.getHeader() does not see those). */
  headers?: http.OutgoingHttpHeaders;
}

const BODYLESS_STATUSES = new Set([101, 204, 205, 304]);

/** Whether the last outgoingHeaders() met a value with latin-1 characters beyond ASCII. */
let latin1Values = false;

/**
 * The app's fields for node:http under the rules of src/http/response-policy.ts: hop-by-hop fields dropped (an
 * app's `Connection: close` still closes), every value checked, `Server` from --server-header. Throws
 * InvalidResponseFieldError for a field HTTP/1.1 cannot carry, before anything is written.
 */
function outgoingHeaders(headers: Headers, closeConnection: boolean, serverHeader: string | null): http.OutgoingHttpHeaders {
  const outgoing: http.OutgoingHttpHeaders = {};
  const checkNames = fieldsNeedNameCheck(headers);
  let hasCookies = false;
  let close = closeConnection;
  latin1Values = false;
  for (const [name, value] of headers) {
    if (checkNames) checkFieldName(name);
    if (!isPlainValue(value) && checkUnusualValue(name, value)) latin1Values = true;
    if (name === 'set-cookie') hasCookies = true;
    else if (!isHopByHop(name)) outgoing[name] = value;
    else if (name === 'connection' && hasCloseOption(value)) close = true;
  }
  if (hasCookies) outgoing['set-cookie'] = headers.getSetCookie();
  if (serverHeader !== null && outgoing.server === undefined) {
    outgoing.server = serverHeader;
    if (!isPlainValue(serverHeader)) latin1Values = true;
  }
  if (close) outgoing.connection = 'close';
  return outgoing;
}

/**
 * Writes `response`; returns a promise only when the body is a stream still to be read (it rejects if the body
 * stream fails, after the connection has been cut or a 500 sent by the caller).
 */
export function sendResponse(
  response: Response,
  incoming: http.IncomingMessage,
  res: http.ServerResponse,
  closeConnection: boolean,
  serverHeader: string | null,
  sent: SentResponse,
): Promise<void> | undefined {
  const status = response.status;
  const headers = outgoingHeaders(response.headers, closeConnection, serverHeader);
  const statusHasBody = !BODYLESS_STATUSES.has(status);
  const sendsBody = statusHasBody && incoming.method !== 'HEAD';
  const known = knownBodyOf(response);
  if (known && known.length !== null && statusHasBody) headers['content-length'] ??= known.length;
  if (known?.bytes !== undefined && sendsBody) {
    // The common case in one go: status line, headers and body in a single write.
    res.writeHead(status, response.statusText || undefined, headers);
    sent.headers = headers;
    sent.bytes = known.length ?? 0;
    // node:http sends the head in the encoding of a string body that goes with it (UTF-8): latin-1 values need
    // the body as bytes, so that the head goes out on its own, in latin-1.
    res.end(latin1Values && typeof known.bytes === 'string' ? Buffer.from(known.bytes) : known.bytes);
    return undefined;
  }
  res.statusCode = status;
  if (response.statusText) res.statusMessage = response.statusText;
  for (const name in headers) res.setHeader(name, headers[name]!);
  if (!sendsBody) {
    if (statusHasBody && headers['content-length'] === undefined && response.body) {
      // HEAD gets the Content-Length its GET would have when the body is at hand.
      return readyBodyLength(response.body, WHOLE_BODY_LIMIT).then((length) => {
        if (length !== undefined && !res.headersSent) res.setHeader('content-length', length);
        res.end();
      });
    }
    if (!known) response.body?.cancel().catch(() => {});
    res.end();
    return undefined;
  }
  const body = response.body;
  if (!body) {
    res.end();
    return undefined;
  }
  return writeStream(body.getReader(), res, sent);
}

function drainedOrClosed(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * A streamed body that is already complete, within this many bytes, is sent whole with
 * a Content-Length; anything longer or slower is flushed as it comes.
 */
const WHOLE_BODY_LIMIT = 1024 * 1024;

async function writeStream(reader: ReadableStreamDefaultReader<Uint8Array>, res: http.ServerResponse, sent: SentResponse): Promise<void> {
  // A client that goes away stops the body's producer (an endless event stream would otherwise run on).
  const cancelIfCut = () => {
    if (!res.writableFinished) reader.cancel().catch(() => {});
  };
  res.once('close', cancelIfCut);
  try {
    let chunk = await reader.read();
    if (!res.hasHeader('content-length')) {
      const early: Uint8Array[] = [];
      let earlyBytes = 0;
      let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
      while (!chunk.done && earlyBytes < WHOLE_BODY_LIMIT) {
        early.push(chunk.value);
        earlyBytes += chunk.value.byteLength;
        const next = reader.read();
        const settled = await readIfReady(next);
        if (!settled) {
          pending = next;
          break;
        }
        chunk = settled;
      }
      if (!pending && chunk.done) {
        res.setHeader('content-length', earlyBytes);
        sent.bytes = earlyBytes;
        if (early.length === 1) return void res.end(early[0]);
        for (const piece of early) res.write(piece);
        return void res.end();
      }
      sent.bytes += earlyBytes;
      for (const piece of early) res.write(piece);
      if (res.writableNeedDrain) await drainedOrClosed(res);
      if (pending) chunk = await pending;
    }
    while (!chunk.done && !res.destroyed) {
      sent.bytes += chunk.value.byteLength;
      if (!res.write(chunk.value)) await drainedOrClosed(res);
      chunk = await reader.read();
    }
    if (!res.destroyed) res.end();
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    res.off('close', cancelIfCut);
  }
}
