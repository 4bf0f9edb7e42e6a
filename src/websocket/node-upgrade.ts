/**
 * WebSocket upgrades on node:http (Node, and Deno's node:http): a request with `Upgrade` comes as the server's
 * 'upgrade' event with the raw socket, and goes through the same request listener as any other request (limits,
 * head rules, forwarding, request hooks, access log) with a ServerResponse on that socket. If the app upgrades it,
 * the listener calls start(): the 101 goes out and the socket becomes a WebSocketConnection; otherwise the app's
 * response is written as usual and the connection closes after it.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FetchRequestListener } from '../http/node/listener.ts';
import type { WebSocketTransport } from './connection.ts';
import type { WebSocketStarter } from './starter.ts';
import type { UpgradeOffer } from './upgrade-offer.ts';

/** The upgrade side of a node:http engine. */
export class NodeUpgrades {
  private readonly startWebSocket: WebSocketStarter;
  /** The engine's connection tracker keeps an upgraded socket busy until it closes. */
  private readonly onSessionStart: (socket: Socket) => void;
  /** Bytes the client sent after an upgrade request's head (node:http hands them over with the event). */
  private readonly heads = new WeakMap<http.IncomingMessage, Buffer>();

  constructor(startWebSocket: WebSocketStarter, onSessionStart: (socket: Socket) => void) {
    this.startWebSocket = startWebSocket;
    this.onSessionStart = onSessionStart;
  }

  /** Serves a server's upgrade requests with `listener`. */
  listen(server: http.Server, listener: FetchRequestListener): void {
    server.on('upgrade', (incoming: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const res = new http.ServerResponse(incoming);
      // Not upgraded: the connection closes after the response (nothing after an Upgrade request is HTTP/1.1).
      res.shouldKeepAlive = false;
      res.assignSocket(socket);
      res.once('finish', () => socket.destroySoon());
      if (head.byteLength > 0) this.heads.set(incoming, head);
      listener(incoming, res);
    });
  }

  /** The app has upgraded the request: the 101 goes out and the socket serves the WebSocket. */
  start(incoming: http.IncomingMessage, res: http.ServerResponse, offer: UpgradeOffer): void {
    const socket = incoming.socket as Socket;
    res.statusCode = 101;
    res.detachSocket(socket);
    this.onSessionStart(socket);
    socket.write(offer.head(), 'latin1');
    const transport: WebSocketTransport = {
      remoteAddress: socket.remoteAddress ?? '',
      write: (data) => void socket.write(data),
      bufferedAmount: () => socket.writableLength,
      end: () => socket.end(),
      destroy: () => socket.destroy(),
    };
    const websocket = this.startWebSocket(transport, offer);
    socket.on('data', (data: Buffer) => websocket.onData(data));
    socket.on('drain', () => websocket.onDrain());
    // A client that half-closes without a close frame: the connection ends (the app hears 1006).
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
    socket.once('close', () => websocket.onClose());
    const head = this.heads.get(incoming);
    if (head) websocket.onData(head);
  }
}
