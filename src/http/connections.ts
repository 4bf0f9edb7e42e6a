/**
 * Tracks an http.Server's connections, for what node:http would otherwise do with a timer per request (or, on
 * connections handed to it with emit('connection'), not at all):
 * - the keep-alive timeout: a connection that has been quiet for `--keep-alive` since it opened or since its last
 *   response is closed by a sweep that runs a few times per timeout (node:http's own keepAliveTimeout re-arms a
 *   socket timer on every response, which costs about a quarter of a hello-world request's CPU time on Deno);
 * - the header timeout: a connection that has not completed a request's head `--header-timeout` after it opened
 *   or after its last response is closed, however slowly its bytes keep arriving;
 * - draining: no request in flight is cut, and a connection that is quiet when the drain starts (idle keep-alive,
 *   or accepted but no request yet) gets a short grace to send one more request, which is answered with
 *   `Connection: close`, before it is closed.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';

interface ConnectionState {
  /** Requests started on it and not yet finished (more than one only with pipelining). */
  busy: number;
  /** The sweep clock when it opened or its last response finished: since then it waits for a request. */
  waitingSince: number;
  /** Like waitingSince, but moved on by bytes arriving: how long it has been really quiet. */
  quietSince: number;
  /** Its bytesRead at the last sweep: bytes of a request still arriving keep a connection open. */
  bytesRead: number;
  /** Set while the connection waits out its grace before being closed. */
  closeTimer?: ReturnType<typeof setTimeout>;
}

/**
 * How long a quiet connection may still bring a request once draining starts. Closing it at once would lose the
 * request a keep-alive client may be sending at that very moment.
 */
export const QUIET_CONNECTION_GRACE_MS = 500;

/** Sweeps per timeout: a quiet connection is closed after 1 to 1.5 timeouts. */
const SWEEPS_PER_TIMEOUT = 4;
const MIN_SWEEP_MS = 10;

/** Knows the connections of a worker's http.Servers and which are busy, to time them out and to drain them. */
export class ConnectionTracker {
  private readonly connections = new Map<Socket, ConnectionState>();
  private readonly keepAliveMs: number;
  private readonly headerTimeoutMs: number;
  private readonly sweepMs: number;
  private sweeper?: ReturnType<typeof setInterval>;
  /** performance.now() at the last sweep: a response's end reads it instead of the clock. */
  private clock = performance.now();
  private draining = false;
  private onIdle?: () => void;

  /**
   * `keepAliveMs`: how long a connection may stay quiet before it is closed (0: keep-alive off, the header timeout
   * alone applies); `headerTimeoutMs`: how long it may take to send a request's head (0: no limit).
   */
  constructor(keepAliveMs: number, headerTimeoutMs: number) {
    this.keepAliveMs = keepAliveMs;
    this.headerTimeoutMs = headerTimeoutMs;
    const shortest = Math.min(...[keepAliveMs, headerTimeoutMs].filter((ms) => ms > 0));
    this.sweepMs = Math.max(Math.ceil(shortest / SWEEPS_PER_TIMEOUT), MIN_SWEEP_MS);
  }

  /** Starts tracking a server's connections. */
  track(server: http.Server): void {
    if ((this.keepAliveMs > 0 || this.headerTimeoutMs > 0) && !this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
      this.sweeper.unref();
    }
    server.on('connection', (socket: Socket) => {
      this.connections.set(socket, { busy: 0, bytesRead: 0, waitingSince: this.clock, quietSince: this.clock });
      if (this.draining) this.closeWhenQuiet(socket);
      socket.once('close', () => {
        clearTimeout(this.connections.get(socket)?.closeTimer);
        this.connections.delete(socket);
        this.checkIdle();
      });
    });
  }

  /** Marks a request's connection busy, until requestDone(). */
  requestStarted(socket: Socket): void {
    const state = this.connections.get(socket);
    if (state) state.busy++;
  }

  /** A request's response has closed (sent, or its client went away). */
  requestDone(socket: Socket): void {
    const state = this.connections.get(socket);
    if (!state) return;
    state.busy--;
    state.quietSince = state.waitingSince = this.clock;
    if (this.draining) this.closeWhenQuiet(socket);
  }

  /** Lets in-flight requests finish, closes connections once quiet, calls onIdle when none is left. */
  drain(onIdle: () => void): void {
    this.draining = true;
    this.onIdle = onIdle;
    for (const socket of this.connections.keys()) this.closeWhenQuiet(socket);
    this.checkIdle();
  }

  /**
   * Closes the connections quiet for a whole keep-alive timeout, and those still without a whole request head a
   * header timeout after they began to wait for one. `clock` lags real time by up to one sweep, so a connection
   * must look quiet (or waiting) for one sweep more than the timeout. Bytes read since the sweep before (a
   * request arriving) make it count as active now; a connection whose response ended since then only has its
   * byte count noted.
   */
  private sweep(): void {
    const previous = this.clock;
    this.clock = performance.now();
    for (const [socket, state] of this.connections) {
      if (state.busy > 0) continue;
      const { bytesRead } = socket;
      if (this.headerTimeoutMs > 0 && this.clock - state.waitingSince > this.headerTimeoutMs + this.sweepMs) {
        socket.destroy();
      } else if (state.quietSince === previous) {
        state.bytesRead = bytesRead;
      } else if (bytesRead !== state.bytesRead) {
        state.bytesRead = bytesRead;
        state.quietSince = this.clock;
      } else if (this.keepAliveMs > 0 && this.clock - state.quietSince > this.keepAliveMs + this.sweepMs) {
        socket.destroy();
      }
    }
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
