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
export const QUIET_CONNECTION_GRACE_MS = 500;

/** Knows the connections of a worker's http.Servers and which are busy, to drain them. */
export class ConnectionTracker {
  private readonly connections = new Map<Socket, ConnectionState>();
  private draining = false;
  private onIdle?: () => void;

  /** Starts tracking a server's connections. */
  track(server: http.Server): void {
    server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { busy: 0 });
      if (this.draining) this.closeWhenQuiet(socket);
      socket.once('close', () => {
        clearTimeout(this.connections.get(socket)?.closeTimer);
        this.connections.delete(socket);
        this.checkIdle();
      });
    });
  }

  /** Marks the request's connection busy until its response closes. */
  requestStarted(req: http.IncomingMessage, res: http.ServerResponse): void {
    const state = this.connections.get(req.socket);
    if (!state) return;
    state.busy++;
    res.once('close', () => {
      state.busy--;
      if (this.draining) this.closeWhenQuiet(req.socket);
    });
  }

  /** Lets in-flight requests finish, closes connections once quiet, calls onIdle when none is left. */
  drain(onIdle: () => void): void {
    this.draining = true;
    this.onIdle = onIdle;
    for (const socket of this.connections.keys()) this.closeWhenQuiet(socket);
    this.checkIdle();
  }

  private closeWhenQuiet(socket: Socket): void {
    const state = this.connections.get(socket);
    if (!state || state.busy > 0 || state.closeTimer) return;
    state.closeTimer = setTimeout(() => {
      state.closeTimer = undefined;
      if (state.busy === 0) socket.destroy();
    }, QUIET_CONNECTION_GRACE_MS);
    state.closeTimer.unref();
  }

  private checkIdle(): void {
    if (this.draining && this.connections.size === 0) this.onIdle?.();
  }
}
