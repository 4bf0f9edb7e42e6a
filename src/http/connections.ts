/**
 * Tracks an http.Server's connections, for what node:http would otherwise do with a timer per request (or, on
 * connections handed to it with emit('connection'), not at all):
 * - the keep-alive timeout: a connection that has been quiet for `--keep-alive` since it opened or since its last
 *   response is closed by a sweep that runs a few times per timeout (node:http's own keepAliveTimeout re-arms a
 *   socket timer on every response, which costs about a quarter of a hello-world request's CPU time on Deno); an
 *   HTTP/2 connection gets GOAWAY first, and is cut if it is still open a sweep later;
 * - the header timeout: a connection that has not completed a request's head `--header-timeout` after it opened
 *   or after its last response is closed, however slowly its bytes keep arriving;
 * - the write timeout: a busy connection whose client has taken none of the bytes written to it for
 *   `--write-timeout` is cut;
 * - backpressure on pipelining: past a few requests in flight on one connection (its client sends requests and
 *   does not read the answers), the handler is not called for the next ones and the connection is not read from
 *   until they are answered (node:http parses a whole chunk it has read, up to 64 KiB of requests, and lifts its
 *   own pause after every request it parses: on Deno one client had 50,000 requests answered without reading);
 * - the connection cap: past `--worker-connections`, a new connection gets a 503 and is closed;
 * - draining: no request in flight is cut, and a request that arrives during the drain is answered with
 *   `Connection: close`. An idle keep-alive connection stays open for drainIdleMs() (see there); a connection
 *   accepted without a request yet gets a short grace to send one.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { FetchRequestListener } from './node/listener.ts';
import type { Logger } from '../glogging.ts';
import { logOverCapacity, OVER_CAPACITY_RESPONSE } from './over-capacity.ts';

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
  /** It has answered a request: quiet now, it is an idle keep-alive connection. */
  served: boolean;
  /** Bytes its client had taken (written minus still buffered) at the sweep that first saw them stuck. */
  taken: number;
  /** The sweep clock when its written bytes were first seen stuck; undefined while they flow. */
  stuckSince?: number;
  /** Requests parsed while MAX_IN_FLIGHT were in flight, waiting for the handler: request, response, … */
  parked: Parameters<FetchRequestListener>[];
  /** Reading is held back while requests are parked. */
  held: boolean;
  /** The socket's resume() obeys the hold (from its first hold on). */
  guarded: boolean;
}

/** The timeouts and limits a tracker applies, in milliseconds (0: off). */
export interface TrackerLimits {
  /** How long a connection may stay quiet before it is closed (0: keep-alive off, the header timeout alone applies). */
  keepAliveMs: number;
  /** How long it may take to send a request's head (0: no limit). */
  headerTimeoutMs: number;
  /** How long a response's bytes may wait for a client that takes none of them (0: no limit). */
  writeTimeoutMs: number;
  /** Most connections at once; past it new ones get a 503. */
  maxConnections: number;
}

/**
 * How long a connection accepted without a request yet may still bring one once draining starts (its client sends
 * it right after connecting).
 */
export const QUIET_CONNECTION_GRACE_MS = 500;

/** The longest a drain keeps an idle keep-alive connection open: the default --keep-alive. */
const DRAIN_IDLE_MAX_MS = 5000;

/**
 * How long a drain keeps an idle keep-alive connection open, for a request its client may be sending at that very
 * moment (closing it then resets the connection and loses the request: 1 keep-alive POST in 3,665 across a HUP
 * on Deno.serve, which closed them at once; 0.5 s was not enough either). Once a client's own idle timeout has
 * passed it no longer uses the connection (undici and Node's agent: 4 s), so the drain waits for the keep-alive
 * timeout, at most 5 s, so that a long --keep-alive does not hold a stop for as long.
 */
export function drainIdleMs(keepAliveMs: number): number {
  return Math.min(keepAliveMs, DRAIN_IDLE_MAX_MS);
}

/**
 * Requests of one connection the handler works on at once (answers waiting to go out in order included); the
 * next ones wait, parsed, and the connection is not read from until they are all admitted and half of these
 * answered.
 */
const MAX_IN_FLIGHT = 16;

/** A socket with the libuv handle Node gives it. */
type HandledSocket = Socket & { _handle?: { writeQueueSize?: number } | null };

/**
 * Bytes written to a socket that its client has not taken yet. node:http2 writes a session's frames from C++ under
 * the JS stream, whose writableLength stays 0 (Node 20-26): they wait in the handle's libuv queue, whose size Node
 * keeps in `writeQueueSize`. (An HTTP/1.1 write waits in the stream, until the handle has taken it all.)
 */
function unsentBytes(socket: HandledSocket): number {
  return socket.writableLength || (socket._handle?.writeQueueSize ?? 0);
}

/** Sweeps per timeout: a quiet connection is closed after 1 to 1.5 timeouts. */
const SWEEPS_PER_TIMEOUT = 4;
const MIN_SWEEP_MS = 10;

/** Knows the connections of a worker's http.Servers and which are busy, to time them out and to drain them. */
export class ConnectionTracker {
  private readonly connections = new Map<Socket, ConnectionState>();
  private readonly keepAliveMs: number;
  private readonly headerTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly logger: Logger;
  private readonly sweepMs: number;
  private sweeper?: ReturnType<typeof setInterval>;
  /** performance.now() at the last sweep: a response's end reads it instead of the clock. */
  private clock = performance.now();
  private draining = false;
  private onIdle?: () => void;
  /** The request listener that admitting() wraps. */
  private listener?: FetchRequestListener;
  /** Sends an HTTP/2 connection GOAWAY instead of closing it at once (Http2Connections.goAway()). */
  private readonly goAway?: (socket: Socket) => boolean;

  constructor(limits: TrackerLimits, logger: Logger, goAway?: (socket: Socket) => boolean) {
    this.goAway = goAway;
    this.keepAliveMs = limits.keepAliveMs;
    this.headerTimeoutMs = limits.headerTimeoutMs;
    this.writeTimeoutMs = limits.writeTimeoutMs;
    this.maxConnections = limits.maxConnections;
    this.logger = logger;
    const shortest = Math.min(...[this.keepAliveMs, this.headerTimeoutMs, this.writeTimeoutMs].filter((ms) => ms > 0));
    this.sweepMs = Math.max(Math.ceil(shortest / SWEEPS_PER_TIMEOUT), MIN_SWEEP_MS);
  }

  /** Starts tracking a server's connections. */
  track(server: http.Server): void {
    if ((this.keepAliveMs > 0 || this.headerTimeoutMs > 0 || this.writeTimeoutMs > 0) && !this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
      this.sweeper.unref();
    }
    server.on('connection', (socket: Socket) => {
      if (this.connections.size >= this.maxConnections) {
        this.refuse(socket);
        return;
      }
      this.connections.set(socket, {
        busy: 0, bytesRead: 0, waitingSince: this.clock, quietSince: this.clock, taken: 0, parked: [], held: false,
        guarded: false, served: false,
      });
      if (this.draining) this.closeWhenQuiet(socket);
      socket.once('close', () => {
        clearTimeout(this.connections.get(socket)?.closeTimer);
        this.connections.delete(socket);
        this.checkIdle();
      });
    });
  }

  /**
   * The request listener that calls `listener` for a request at once, or, past MAX_IN_FLIGHT requests in flight
   * on its connection, once earlier ones are answered (and holds reading meanwhile).
   */
  admitting(listener: FetchRequestListener): FetchRequestListener {
    this.listener = listener;
    return (incoming, res, awaitsContinue) => {
      const state = this.connections.get(incoming.socket as Socket);
      // Only a connection refused over --worker-connections is untracked: a request it sent before its 503 went out
      // is never served (the socket closes once the 503 is written).
      if (!state) return;
      if (state.busy < MAX_IN_FLIGHT && state.parked.length === 0) {
        listener(incoming, res, awaitsContinue);
        return;
      }
      state.parked.push([incoming, res, awaitsContinue]);
      if (!state.held) this.holdReading(incoming.socket as Socket, state);
    };
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
    const next = state.parked.shift();
    if (next) {
      this.listener!(...next);
    } else if (state.held && state.busy <= MAX_IN_FLIGHT / 2) {
      state.held = false;
      // node:http's own pause (socket._paused: its writes have not drained) is left for node:http to lift.
      if (!(socket as Socket & { _paused?: boolean })._paused) socket.resume();
    }
    state.quietSince = state.waitingSince = this.clock;
    state.served = true;
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
      if (state.busy > 0) {
        if (this.writeTimeoutMs > 0) this.checkWriting(socket, state);
        continue;
      }
      const { bytesRead } = socket;
      if (this.headerTimeoutMs > 0 && this.clock - state.waitingSince > this.headerTimeoutMs + this.sweepMs) {
        this.closeQuiet(socket);
      } else if (state.quietSince === previous) {
        state.bytesRead = bytesRead;
      } else if (bytesRead !== state.bytesRead) {
        state.bytesRead = bytesRead;
        state.quietSince = this.clock;
      } else if (this.keepAliveMs > 0 && this.clock - state.quietSince > this.keepAliveMs + this.sweepMs) {
        this.closeQuiet(socket);
      }
    }
  }

  /**
   * Closes a connection timed out while quiet: an HTTP/2 one gets GOAWAY first (RFC 9113 clients expect one before
   * a close), and is cut if it is still open at a later sweep.
   */
  private closeQuiet(socket: Socket): void {
    if (!this.goAway?.(socket)) socket.destroy();
  }

  /** Cuts a busy connection whose client has taken none of the bytes written to it for a whole write timeout. */
  private checkWriting(socket: Socket, state: ConnectionState): void {
    const buffered = unsentBytes(socket);
    if (buffered === 0) {
      state.stuckSince = undefined;
      return;
    }
    const taken = socket.bytesWritten - buffered;
    if (state.stuckSince === undefined || taken !== state.taken) {
      state.taken = taken;
      state.stuckSince = this.clock;
    } else if (this.clock - state.stuckSince > this.writeTimeoutMs) {
      this.logger.warning(`Write timeout: ip=${socket.remoteAddress ?? '-'} took none of the response for ` +
        `${this.writeTimeoutMs / 1000} s; connection closed`);
      socket.destroy();
    }
  }

  /**
   * Stops reading from a connection until its parked requests are admitted. node:http resumes the socket
   * after every request it parses (and once its own writes drain), and Deno's streams deliver data already read
   * as soon as flowing is set again, before a `resume` event could re-pause: so the socket's own resume() is made
   * to wait while it is held (an own property, set on the first hold only).
   */
  private holdReading(socket: Socket, state: ConnectionState): void {
    state.held = true;
    socket.pause();
    if (state.guarded) return;
    state.guarded = true;
    const resume = socket.resume;
    socket.resume = function (this: Socket) {
      return state.held ? this : resume.call(this);
    };
  }

  /** Answers a connection past --worker-connections with a 503 and closes it, before it has sent anything. */
  private refuse(socket: Socket): void {
    logOverCapacity(this.logger, socket.remoteAddress, this.maxConnections);
    socket.on('error', () => {});
    socket.end(OVER_CAPACITY_RESPONSE);
    socket.destroySoon();
  }

  /**
   * Closes a quiet connection during the drain if it stays quiet: an idle keep-alive one after drainIdleMs(), one
   * without a request yet after a short grace (a request during the drain is answered with `Connection: close`).
   */
  private closeWhenQuiet(socket: Socket): void {
    const state = this.connections.get(socket);
    if (!state || state.busy > 0 || state.closeTimer) return;
    state.closeTimer = setTimeout(() => {
      state.closeTimer = undefined;
      if (state.busy === 0) socket.destroy();
    }, state.served && this.keepAliveMs > 0 ? drainIdleMs(this.keepAliveMs) : QUIET_CONNECTION_GRACE_MS);
    state.closeTimer.unref();
  }

  private checkIdle(): void {
    if (this.draining && this.connections.size === 0) this.onIdle?.();
  }
}
