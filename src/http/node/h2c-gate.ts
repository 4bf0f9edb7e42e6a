/**
 * h2c with prior knowledge (`--http-protocols …,h2c`) in front of node:http: a connection's first bytes tell an
 * HTTP/2 client, which opens with the 24-byte connection preface (RFC 9113 section 3.4), from an HTTP/1.1 one.
 * A preface from a peer of --forwarded-allow-ips (or a unix-socket peer) goes to the HTTP/2 server, from any other
 * peer it gets 400 and the invalid-request line (Gunicorn's InvalidH2CPreface); other bytes go to node:http as
 * without the gate (or get 400 when --http-protocols has no h1). Installed only when asked for: node:http gets
 * the connections directly otherwise. The ConnectionTracker (a 'connection' listener added after this) sees every
 * connection at once, so the header timeout covers a peer that sends nothing.
 */
import type net from 'node:net';
import { invalidRequestLine, type Logger } from '../../glogging.ts';
import { rawErrorAnswer } from '../app-response.ts';
import type { CleartextProtocols } from '../http-protocols.ts';
import { NOT_A_PREFACE, prefaceVerdict, UNTRUSTED_PREFACE } from '../http2-preface.ts';
import type { PeerMatcher } from '../trusted-peers.ts';
import { readFirstBytes } from './first-bytes.ts';
import type { Http2Connections } from './http2-server.ts';

type ConnectionListener = (socket: net.Socket) => void;

const REFUSAL = Buffer.from(rawErrorAnswer(400), 'latin1');

/** What the gate needs to know. */
export interface H2cGateOptions {
  protocols: CleartextProtocols;
  /** `--forwarded-allow-ips`. */
  trusted: PeerMatcher;
  http2: Http2Connections;
  logger: Logger;
}

/** Puts the preface check between `server` and the connection listeners it has now (node:http's). */
export function routeHttp2Prefaces(server: net.Server, { protocols, trusted, http2, logger }: H2cGateOptions): void {
  const httpListeners = server.listeners('connection') as ConnectionListener[];
  server.removeAllListeners('connection');
  const refuse = (socket: net.Socket, reason: string) => {
    logger.warning(invalidRequestLine(socket.remoteAddress, reason));
    socket.end(REFUSAL);
    socket.destroySoon();
  };
  /** Where a connection goes once its first bytes (`seen`) tell. */
  const route = (socket: net.Socket, verdict: 'h1' | 'h2', seen: Buffer) => {
    if (verdict === 'h1') {
      if (!protocols.h1) {
        refuse(socket, NOT_A_PREFACE);
        return;
      }
      for (const listener of httpListeners) listener.call(server, socket);
      // node:http reads what arrives from now on; the bytes already read reach its parser as a 'data' event.
      socket.emit('data', seen);
    } else if (socket.remoteAddress !== undefined && !trusted(socket.remoteAddress)) {
      refuse(socket, UNTRUSTED_PREFACE);
    } else {
      // node:http2 first takes what the socket has buffered, if the socket is not flowing (else those bytes
      // would go to 'data' listeners, of which there are none).
      socket.pause();
      socket.unshift(seen);
      http2.serve(socket);
    }
  };
  server.on('connection', (socket: net.Socket) => {
    let seen: Buffer | undefined;
    readFirstBytes(socket, (data) => {
      const bytes = seen = seen ? Buffer.concat([seen, data]) : data;
      const verdict = prefaceVerdict(bytes);
      return verdict && (() => route(socket, verdict, bytes));
    });
  });
}
