/**
 * Tracks an http.Server's connections so that a worker can drain: no request in flight is cut, idle keep-alive
 * connections are closed, and a connection accepted just before the drain still gets to send its request.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';

interface ConnectionState {
  /** Requests started on it and not yet finished (more than one only with pipelining). */
  busy: number;
  /** Requests answered on it. */
  served: number;
}

/** How long a connection that has not sent a request yet may still do so once draining starts. */
const FRESH_CONNECTION_GRACE_MS = 1000;

/** Counts the connections and in-flight requests of a worker's http.Servers (one per listening fd). */
export class ConnectionTracker {
  readonly #connections = new Map<Socket, ConnectionState>();
  #draining = false;
  #onIdle?: () => void;
  /** Requests in flight now. */
  active = 0;

  /** Starts counting a server's connections and requests; call before adding request listeners. */
  track(server: http.Server): void {
    server.on('connection', (socket: Socket) => {
      this.#connections.set(socket, { busy: 0, served: 0 });
      if (this.#draining) this.#closeWhenQuiet(socket);
      socket.once('close', () => {
        this.#connections.delete(socket);
        this.#checkIdle();
      });
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const state = this.#connections.get(req.socket);
      this.active++;
      if (state) state.busy++;
      res.once('close', () => {
        this.active--;
        if (state) {
          state.busy--;
          state.served++;
          if (this.#draining && state.busy === 0) req.socket.end();
        }
        this.#checkIdle();
      });
    });
  }

  /** Closes what is idle, lets in-flight requests finish and calls onIdle once no connection is left. */
  drain(onIdle: () => void): void {
    this.#draining = true;
    this.#onIdle = onIdle;
    for (const socket of this.#connections.keys()) this.#closeWhenQuiet(socket);
    this.#checkIdle();
  }

  #closeWhenQuiet(socket: Socket): void {
    const state = this.#connections.get(socket);
    if (!state || state.busy > 0) return;
    if (state.served > 0) {
      socket.end();
      return;
    }
    setTimeout(() => {
      if (state.busy === 0) socket.destroy();
    }, FRESH_CONNECTION_GRACE_MS).unref();
  }

  #checkIdle(): void {
    if (this.#draining && this.#connections.size === 0 && this.active === 0) this.#onIdle?.();
  }
}
