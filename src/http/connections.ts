/**
 * Tracks an http.Server's connections so that a worker can drain: no request in flight is cut, and a connection
 * that is quiet when the drain starts (idle keep-alive, or accepted but no request yet) gets a short grace to
 * send one more request, which is answered with `Connection: close`, before it is closed.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';

interface ConnectionState {
  /** Requests started on it and not yet finished (more than one only with pipelining). */
  busy: number;
  /** Set while the connection waits out its grace before being closed. */
  closeTimer?: ReturnType<typeof setTimeout>;
}

/**
 * How long a quiet connection may still bring a request once draining starts. Closing it at once would lose the
 * request a keep-alive client may be sending at that very moment.
 */
const QUIET_CONNECTION_GRACE_MS = 500;

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
      this.#connections.set(socket, { busy: 0 });
      if (this.#draining) this.#closeWhenQuiet(socket);
      socket.once('close', () => {
        clearTimeout(this.#connections.get(socket)?.closeTimer);
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
          if (this.#draining) this.#closeWhenQuiet(req.socket);
        }
        this.#checkIdle();
      });
    });
  }

  /** Lets in-flight requests finish, closes connections once quiet, calls onIdle when none is left. */
  drain(onIdle: () => void): void {
    this.#draining = true;
    this.#onIdle = onIdle;
    for (const socket of this.#connections.keys()) this.#closeWhenQuiet(socket);
    this.#checkIdle();
  }

  #closeWhenQuiet(socket: Socket): void {
    const state = this.#connections.get(socket);
    if (!state || state.busy > 0 || state.closeTimer) return;
    state.closeTimer = setTimeout(() => {
      state.closeTimer = undefined;
      if (state.busy === 0) socket.destroy();
    }, QUIET_CONNECTION_GRACE_MS);
    state.closeTimer.unref();
  }

  #checkIdle(): void {
    if (this.#draining && this.#connections.size === 0 && this.active === 0) this.#onIdle?.();
  }
}
