// The master's loop (src/master-loop.ts) on mocked timers and a mocked clock: a pass every tick, a pass at a
// deadline nearer than that, never a busy loop; and the deadlines a worker gives it (src/worker-handle.ts).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { LOOP_TICK_MS, MasterLoop } from '../src/master-loop.ts';
import { WorkerHandle } from '../src/worker-handle.ts';

describe('master loop', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  /** Moves the mocked clock on by `ms`, a millisecond at a time (Node 20's tick() shows timers the clock's end time). */
  function advance(ms: number): void {
    for (let step = 0; step < ms; step++) mock.timers.tick(1);
  }

  /** A loop on the mocked clock whose passes are recorded, with `deadline` as its next deadline. */
  function recordingLoop(deadline: () => number): { passes: number[]; loop: MasterLoop } {
    const passes: number[] = [];
    const loop = new MasterLoop(() => passes.push(Date.now()), deadline, () => Date.now());
    return { passes, loop };
  }

  it('runs a pass every tick when no deadline is near', () => {
    const { passes, loop } = recordingLoop(() => Infinity);
    loop.start();
    advance(LOOP_TICK_MS * 3);
    loop.stop();
    assert.deepEqual(passes, [LOOP_TICK_MS, LOOP_TICK_MS * 2, LOOP_TICK_MS * 3]);
  });

  it('runs a pass at a deadline that comes before the next tick, then ticks again', () => {
    const { passes, loop } = recordingLoop(() => 250);
    loop.start();
    advance(LOOP_TICK_MS * 2 + 50);
    loop.stop();
    // 200 (a tick), 250 (the deadline), then a millisecond apart while the deadline stays past: no busy loop.
    assert.deepEqual(passes.slice(0, 3), [LOOP_TICK_MS, 250, 251]);
    assert.equal(passes.length, 2 + 200);
  });

  it('never runs two passes less than a millisecond apart, even at a deadline a fraction of one away', () => {
    const { passes, loop } = recordingLoop(() => Date.now() + 0.2);
    loop.start();
    advance(10);
    loop.stop();
    assert.deepEqual(passes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('wake() brings the next pass forward to a nearer deadline set meanwhile, and never puts it off', () => {
    let deadline = Infinity;
    const passes: number[] = [];
    // Each pass does what was due: the deadline is gone after it.
    const loop = new MasterLoop(() => {
      passes.push(Date.now());
      deadline = Infinity;
    }, () => deadline, () => Date.now());
    loop.start();
    advance(50);
    deadline = 80;
    loop.wake();
    advance(50);
    for (let step = 0; step < 10; step++) {
      loop.wake();
      advance(20);
    }
    loop.stop();
    // 80 (the deadline set at 50), then 280: the wakes every 20 ms with nothing near did not put the tick off.
    assert.deepEqual(passes, [80, 280]);
  });

  it('runs no pass after stop(), also when a pass stops it', () => {
    const passes: number[] = [];
    const loop = new MasterLoop(() => {
      passes.push(Date.now());
      loop.stop();
    }, () => Infinity, () => Date.now());
    loop.start();
    advance(LOOP_TICK_MS * 5);
    assert.deepEqual(passes, [LOOP_TICK_MS]);
  });
});

describe('a worker\'s deadlines', () => {
  const ABORT_GRACE_MS = 1000;
  const handle = (bootTimeoutMs = 0) => new WorkerHandle({ pid: 4242 } as ChildProcess, 0, 1, 0, bootTimeoutMs);

  it('booting: its boot deadline only (--timeout applies once it is ready)', () => {
    const worker = handle(30000);
    assert.equal(worker.nextDeadline(2000, ABORT_GRACE_MS), worker.bootDeadline);
    assert.equal(handle().nextDeadline(2000, ABORT_GRACE_MS), Infinity);
  });

  it('ready: its abort when its heartbeat is older than the timeout, then its kill a grace later; none without a timeout', () => {
    const worker = handle();
    worker.markReady();
    assert.equal(worker.nextDeadline(2000, ABORT_GRACE_MS), worker.lastSeen + 2000);
    assert.equal(worker.nextDeadline(0, ABORT_GRACE_MS), Infinity);
    worker.abortedAt = worker.lastSeen + 2000;
    assert.equal(worker.nextDeadline(2000, ABORT_GRACE_MS), worker.lastSeen + 3000);
  });

  it('retiring: its kill time, or its heartbeat deadline when that is sooner; killed: none', () => {
    const worker = handle();
    worker.markReady();
    worker.killAt = worker.lastSeen + 500;
    assert.equal(worker.nextDeadline(2000, ABORT_GRACE_MS), worker.lastSeen + 500);
    worker.state = 'killed';
    assert.equal(worker.nextDeadline(2000, ABORT_GRACE_MS), Infinity);
  });
});
