/**
 * How the engines with tsgunicorn's own WebSocket layer (node-http, bun-listen) start a WebSocket once its 101 is
 * written: a WebSocketConnection of the app's handler, told it is open, and tracked for the drain.
 */
import type { Logger } from '../glogging.ts';
import type { WebSocketHandler } from './app-handler.ts';
import { WebSocketConnection, type WebSocketTransport } from './connection.ts';
import type { WebSocketSessions } from './sessions.ts';
import type { UpgradeOffer } from './upgrade-offer.ts';

/** Starts a WebSocket on a transport whose handshake has been written. */
export type WebSocketStarter = (transport: WebSocketTransport, offer: UpgradeOffer) => WebSocketConnection;

/** The engine's starter: connections of the app's handler, tracked in `sessions` for the drain. */
export function webSocketStarter(
  handler: WebSocketHandler, maxMessage: number, logger: Logger, sessions: WebSocketSessions,
): WebSocketStarter {
  const onClosed = (socket: WebSocketConnection) => sessions.delete(socket);
  return (transport, offer) => {
    const socket = new WebSocketConnection(transport, { handler, data: offer.options?.data, maxMessage, logger, onClosed });
    socket.open();
    sessions.add(socket);
    return socket;
  };
}
