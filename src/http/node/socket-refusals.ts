/**
 * The requests node:http hands to a server's socket events instead of its request listener, answered as
 * tsgunicorn answers every invalid request (the status, `Connection: close`, one `Invalid request from ip=…` line):
 * its parse errors ('clientError'; without a listener node:http writes a bare 400, 431 or 413 and logs nothing)
 * and CONNECT ('connect'; without a listener it closes the connection without a word).
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import { invalidRequestLine, type Logger } from '../../glogging.ts';
import { rawErrorAnswer } from '../app-response.ts';

/** Connections whose request the request listener is refusing (its answer closes them). */
const refusing = new WeakSet<Socket>();

/**
 * Notes that the request listener refuses the request on `socket`: a parse error that follows (llhttp goes on
 * after the head it refused, e.g. through a body it cannot frame) is then left to that refusal, which may still be
 * on its way (Node 26 writes it after the parser's error).
 */
export function refusingOn(socket: Socket): void {
  refusing.add(socket);
}

/** The status for one of llhttp's error codes. */
function statusOf(code: string): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413;
  return 400;
}

/** Answers a request with `status` on its socket, logs it, and closes once that has gone out. */
function refuse(logger: Logger, socket: Socket, status: number, reason: string): void {
  logger.warning(invalidRequestLine(socket.remoteAddress, reason));
  // node:http has taken its own error listener off a socket it hands to 'connect': a reset must not go unhandled.
  socket.on('error', () => socket.destroy());
  socket.write(rawErrorAnswer(status));
  socket.destroySoon();
}

/**
 * A 'connect' listener for an http.Server: CONNECT gets 501, as a method a Fetch Request cannot have (the head rules
 * answer the same on the engines that parse for themselves).
 */
export function createConnectListener(logger: Logger): (incoming: http.IncomingMessage, socket: Socket) => void {
  return (incoming, socket) => refuse(logger, socket, 501, `method CONNECT ${incoming.url}: a Fetch Request cannot have it`);
}

/** A 'clientError' listener for an http.Server. */
export function createClientErrorListener(logger: Logger): (error: Error & { code?: string; reason?: string }, socket: Socket) => void {
  return (error, socket) => {
    const code = error.code ?? '';
    if (refusing.has(socket)) return;
    // Not a parse error (the client reset the connection, say), or the client closed in the middle of a request
    // (Gunicorn ignores that too): nothing to answer.
    if (!code.startsWith('HPE_') || code === 'HPE_INVALID_EOF_STATE') {
      logger.debug(`Connection error: ${error.message}`);
      socket.destroy();
      return;
    }
    // node:http keeps the response being written on a socket as `_httpMessage`, and marks one after which it
    // closes the connection `_last`: neither is public, and nothing public tells the same.
    const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
    // No request being answered, or the one being answered has a malformed body (the handler's read of it fails
    // when the connection closes): refused at once, unless its answer has begun.
    if (!inFlight || !inFlight.req.complete) {
      if (socket.writable && !inFlight?.headersSent) refuse(logger, socket, statusOf(code), `${code} ${error.reason ?? error.message}`);
      else socket.destroy();
      return;
    }
    // The bytes after a request still being answered are bad: that answer goes out first and alone (node:http would
    // write its 400 ahead of it), with `Connection: close` if its head is not out yet, then the connection closes.
    // After an answer that closes the connection anyway (HTTP/1.0, a refusal by the head rules, logged then) those
    // bytes are never parsed, as with Gunicorn: nothing to log.
    const closing = !inFlight.shouldKeepAlive || (inFlight as http.ServerResponse & { _last?: boolean })._last === true;
    if (!closing) {
      logger.warning(invalidRequestLine(socket.remoteAddress, `${code} ${error.reason ?? error.message}`));
      if (!inFlight.headersSent) inFlight.shouldKeepAlive = false;
    }
    inFlight.once('finish', () => socket.destroySoon());
  };
}
