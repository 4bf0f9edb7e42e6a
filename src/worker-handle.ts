/**
 * The master's view of one worker process (Puma's WorkerHandle): explicit state, deadlines, the last heartbeat,
 * and how to message or signal it. None of the worker's own logic lives here.
 */
import type { ChildProcess } from 'node:child_process';
import type { HeartbeatMessage, MasterMessage } from './messages.ts';

/**
 * booting: spawned, app not serving yet (SIGKILLed at `bootDeadline`); ready: serving; replacing: asked to be replaced (max-requests in
 * reuse-port mode) and serving until its replacement is ready; retiring: told to stop (or announced it stops)
 * and SIGKILLed at `killAt`; killed: SIGKILL sent, waiting for its exit.
 */
export type WorkerState = (typeof WORKER_STATES)[number];
/** Every WorkerState, in lifecycle order. */
export const WORKER_STATES = ['booting', 'ready', 'replacing', 'retiring', 'killed'] as const;

/** What the worker last reported in a heartbeat. */
export type WorkerStatus = Omit<HeartbeatMessage, 'type'>;

/** One worker process as the arbiter tracks it. */
export class WorkerHandle {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Stable slot 0..N-1 (TSGUNICORN_WORKER_ID). */
  readonly slot: number;
  /** Spawn order; the oldest worker is retired first. */
  readonly age: number;
  /** Config generation it was spawned with; HUP starts a new one. */
  readonly generation: number;
  state: WorkerState = 'booting';
  /** performance.now() of its last message. */
  lastSeen = performance.now();
  lastStatus: WorkerStatus = { requests: 0, active: 0, rss: 0 };
  /** When it retires: SIGKILL at this performance.now() time. */
  killAt?: number;
  /** When it was told to abort because its heartbeat stopped. */
  abortedAt?: number;
  /** performance.now() at spawn. */
  readonly startedAt = performance.now();
  /** While booting: SIGKILL at this performance.now() time (--boot-timeout; undefined: no limit). */
  readonly bootDeadline?: number;
  /** When it reported ready (undefined: it never did). */
  readyAt?: number;
  /** It was killed for not being ready by its boot deadline. */
  bootTimedOut = false;
  /** The master (or the worker itself) stopped it on purpose: its exit is expected. */
  retired = false;

  constructor(child: ChildProcess, slot: number, age: number, generation: number, bootTimeoutMs: number) {
    this.child = child;
    this.pid = child.pid!;
    this.slot = slot;
    this.age = age;
    this.generation = generation;
    if (bootTimeoutMs > 0) this.bootDeadline = this.startedAt + bootTimeoutMs;
  }

  /** Booting or ready: counts towards the workers the master wants. */
  get live(): boolean {
    return this.state === 'booting' || this.state === 'ready';
  }

  /** Any message is proof of life. */
  seen(): void {
    this.lastSeen = performance.now();
  }

  /** The worker serves. */
  markReady(): void {
    if (this.state !== 'booting') return;
    this.state = 'ready';
    this.readyAt = performance.now();
  }

  /** Still booting at its boot deadline: SIGKILL. */
  timeOutBoot(): void {
    this.bootTimedOut = true;
    this.kill();
  }

  /** The worker asked to be replaced; it serves until the master stops it. */
  markReplacing(): void {
    if (this.live) this.state = 'replacing';
  }

  /** Keeps a heartbeat's counters. */
  ping(status: WorkerStatus): void {
    this.lastStatus = status;
  }

  /** The worker stops (asked to, or by itself): it is SIGKILLed if still there after `graceMs`. */
  retire(graceMs: number): void {
    this.retired = true;
    if (this.state === 'killed') return;
    this.state = 'retiring';
    this.killAt = Math.min(this.killAt ?? Infinity, performance.now() + graceMs);
  }

  /** Told to abort after its heartbeat stopped. */
  abort(): void {
    this.abortedAt = performance.now();
    this.send({ type: 'abort' });
  }

  /**
   * The next time (performance.now()) the master's loop has something to do with this worker, Infinity when
   * nothing: its SIGKILL at `killAt` or at its boot deadline, and under a heartbeat timeout of `timeoutMs` (0: none)
   * its abort once its last message is older than that, then its SIGKILL `abortGraceMs` after the abort.
   */
  nextDeadline(timeoutMs: number, abortGraceMs: number): number {
    if (this.state === 'killed') return Infinity;
    if (this.state === 'booting') return Math.min(this.killAt ?? Infinity, this.bootDeadline ?? Infinity);
    const heartbeat = timeoutMs <= 0 ? Infinity : this.abortedAt === undefined ? this.lastSeen + timeoutMs : this.abortedAt + abortGraceMs;
    return Math.min(this.killAt ?? Infinity, heartbeat);
  }

  /** Sends a message; a stop falls back to a signal when the channel is closed. */
  send(message: MasterMessage): void {
    try {
      if (this.child.connected) {
        this.child.send(message);
        return;
      }
    } catch {
      // The channel closed under us: fall back to a signal below.
    }
    if (message.type === 'stop') this.signal(message.graceful ? 'SIGTERM' : 'SIGQUIT');
  }

  /** SIGKILL, once. */
  kill(): void {
    if (this.state === 'killed') return;
    this.signal('SIGKILL');
    this.state = 'killed';
    this.killAt = undefined;
  }

  private signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone; its exit event reaps it.
    }
  }
}
