// The control socket and `tsgunicorn ctl` under node, deno and bun: every command against a running server, the
// exit statuses, bad frames, stale and live socket files, and the default path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { encodeFrame, FrameError, FrameReader, MAX_FRAME_BYTES } from '../src/control-protocol.ts';
import { EventLoopLag } from '../src/event-loop-lag.ts';
import { describeEachTarget, fixture, isAlive, runCli, Server, sleep, type TestTarget, tempDir, waitFor, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];

interface Stats {
  pid: number;
  targetWorkers: number;
  workers: { pid: number; state: string; generation: number; lagMs?: number; requests: number }[];
}

/** Runs `tsgunicorn ctl ARGS…` with the target's runtime (its mode flag would come before `ctl`). */
function ctlCli(target: TestTarget, args: string[], env?: Record<string, string>) {
  return runCli(target.runtime, ['ctl', ...args], { env });
}

/** Runs `tsgunicorn ctl --socket FILE ARGS…`. */
function ctl(target: TestTarget, file: string, args: string[]) {
  return ctlCli(target, ['--socket', file, ...args]);
}

async function stats(target: TestTarget, file: string): Promise<Stats> {
  const run = await ctl(target, file, ['--json', 'stats']);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as Stats;
}

/** Sends raw bytes to the control socket and collects the reply frames until the master closes or `frames` came. */
function rawExchange(file: string, bytes: Buffer, frames: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    const reader = new FrameReader();
    const replies: unknown[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`got ${replies.length} of ${frames} replies`));
    }, 5000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(replies);
    };
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk: Buffer) => {
      replies.push(...reader.push(chunk));
      if (replies.length >= frames) done();
    });
    socket.on('close', done);
    socket.on('error', () => {});
  });
}

describe('control protocol frames', () => {
  it('reads frames split anywhere and refuses an oversized one before its body', () => {
    const reader = new FrameReader();
    const bytes = Buffer.concat([encodeFrame({ id: 1, command: 'stats', args: [] }), encodeFrame({ id: 2, command: 'help' })]);
    const values = [...bytes].flatMap((byte) => reader.push(Buffer.from([byte])));
    assert.deepEqual(values, [{ id: 1, command: 'stats', args: [] }, { id: 2, command: 'help' }]);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME_BYTES + 1);
    assert.throws(() => new FrameReader().push(big), FrameError);
    const notJson = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]);
    assert.ok(new FrameReader().push(notJson)[0] instanceof FrameError);
  });
});

describe('event-loop lag', () => {
  it('reports a blocked loop as lag', async () => {
    const lag = new EventLoopLag();
    lag.start();
    await sleep(150);
    lag.takeWorst();
    const blockUntil = performance.now() + 300;
    while (performance.now() < blockUntil) {
      // Blocks the loop as a synchronous handler would.
    }
    await sleep(150);
    // The 100 ms timer was due within the first 100 ms of the block: it fired at least 200 ms late.
    assert.ok(lag.takeWorst() >= 200);
  });
});

describeEachTarget('ctl', (target) => {
  describe(`${target.name}: tsgunicorn ctl`, () => {
    it('stats, workers add/remove, worker kill, --json, a bad command, bad frames', async () => {
      const dir = tempDir();
      const file = path.join(dir, 'master.ctl');
      try {
        const args = [...LOCAL, '-w', '2', '--control-socket', file, fixture('app.ts')];
        await withRunningServer(Server.start(target, args, { workers: 2 }), async (server) => {
          await server.waitForLine(/Control socket at /);
          assert.equal(fs.statSync(file).mode & 0o777, 0o600);
          const before = await stats(target, file);
          assert.equal(before.pid, server.pid);
          assert.equal(before.targetWorkers, 2);
          assert.deepEqual(before.workers.map((w) => w.pid).sort(), server.liveWorkers().sort());
          const table = await ctl(target, file, ['stats']);
          assert.equal(table.code, 0, table.stderr);
          assert.match(table.stdout, new RegExp(`^master ${server.pid},`));
          for (const worker of before.workers) assert.match(table.stdout, new RegExp(`^${worker.pid} `, 'm'));

          const added = await ctl(target, file, ['--json', 'workers', 'add']);
          assert.deepEqual(JSON.parse(added.stdout), { targetWorkers: 3 });
          await server.waitForReady(3);
          const removed = await ctl(target, file, ['workers', 'remove', '2']);
          assert.match(removed.stdout, /targetWorkers: 1/);
          const [survivor] = await server.waitForReady(1);

          assert.equal((await ctl(target, file, ['worker', 'kill', String(survivor)])).code, 0);
          const replacement = await waitFor('the killed worker\'s replacement', () => {
            const live = server.liveWorkers();
            return live.length === 1 && live[0] !== survivor ? live[0] : undefined;
          });
          const lagged = await pollStats(target, file, ({ workers }) => workers.length === 1 && workers[0].pid === replacement &&
            workers[0].lagMs !== undefined);
          assert.ok(lagged.workers[0].lagMs! >= 0);

          const unknown = await ctl(target, file, ['frobnicate']);
          assert.equal(unknown.code, 2);
          assert.match(unknown.stderr, /^tsgunicorn ctl: unknown command "frobnicate"/);
          assert.equal(unknown.stderr.trim().split('\n').length, 1);
          const refused = await ctl(target, file, ['worker', 'kill', '1']);
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, /no live worker has pid 1/);

          const oversized = Buffer.alloc(4);
          oversized.writeUInt32BE(0xffffffff);
          const [tooBig] = await rawExchange(file, oversized, 1) as { ok: boolean; error: string }[];
          assert.equal(tooBig.ok, false);
          assert.match(tooBig.error, /above the limit/);
          const garbage = Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('nope!'), encodeFrame({ id: 7, command: 42 }),
            encodeFrame({ id: 8, command: 'help', args: [] })]);
          const replies = await rawExchange(file, garbage, 3) as { id: number | null; ok: boolean }[];
          assert.deepEqual(replies.map((reply) => reply.ok), [false, false, true]);
          assert.equal(replies[2].id, 8);
          const still = await stats(target, file);
          assert.equal(still.pid, server.pid);
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reload rolls the workers, reopen-logs reopens a moved log, shutdown stops the master and removes the socket', async () => {
      const dir = tempDir();
      const file = path.join(dir, 'master.ctl');
      const logFile = path.join(dir, 'error.log');
      try {
        const args = [...LOCAL, '-w', '2', '--control-socket', file, '--error-logfile', logFile, fixture('app.ts')];
        await withRunningServer(Server.start(target, args, { workers: 2, logFile }), async (server) => {
          const old = server.liveWorkers();
          assert.match((await ctl(target, file, ['reload'])).stdout, /reloading: true/);
          await server.waitForLine(/Reload done/);
          const rolled = await server.waitForReady(2);
          assert.ok(rolled.every((pid) => !old.includes(pid)), `${rolled} after ${old}`);

          fs.renameSync(logFile, `${logFile}.1`);
          assert.equal((await ctl(target, file, ['reopen-logs'])).code, 0);
          await waitFor('the master to reopen its log', () => (fs.existsSync(logFile) ? true : undefined));

          const stop = await ctl(target, file, ['shutdown']);
          assert.equal(stop.code, 0, stop.stderr);
          assert.match(stop.stdout, /shutdown: graceful/);
          assert.equal((await server.waitForExit()).code, 0);
          assert.equal(fs.existsSync(file), false);
          const dead = await ctl(target, file, ['stats']);
          assert.equal(dead.code, 1);
          assert.equal(dead.stderr.trim().split('\n').length, 1);
          assert.ok(dead.stderr.includes(file), dead.stderr);
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('replaces a stale socket file, leaves a live master\'s alone, and is found at the default path', async () => {
      const dir = tempDir();
      const runtimeDir = path.join(dir, 'run');
      fs.mkdirSync(runtimeDir);
      const env = { XDG_RUNTIME_DIR: runtimeDir };
      const file = path.join(runtimeDir, 'tsgunicorn-probe.ctl');
      try {
        // A socket file nobody listens on, as a killed master leaves it.
        const python = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(file)})`]);
        assert.equal(python.status, 0, String(python.stderr));
        await withRunningServer(Server.start(target, [...LOCAL, '-n', 'probe', fixture('app.ts')], { env }), async (server) => {
          await server.waitForLine(/Control socket at /);
          assert.equal((await stats(target, file)).pid, server.pid);
          const byName = await ctlCli(target, ['-n', 'probe', '--json', 'stats'], env);
          assert.equal(JSON.parse(byName.stdout).pid, server.pid, byName.stderr);
          const onlyOne = await ctlCli(target, ['--json', 'stats'], env);
          assert.equal(JSON.parse(onlyOne.stdout).pid, server.pid, onlyOne.stderr);
          await withRunningServer(Server.start(target, [...LOCAL, '-n', 'probe', fixture('app.ts')], { env }), async (second) => {
            await second.waitForLine(/No control socket at .*another live master serves it/);
            assert.equal((await stats(target, file)).pid, server.pid);
          });
          assert.ok(isAlive(server.pid));
        });
        const missing = await ctlCli(target, ['-n', 'nobody', 'stats'], env);
        assert.equal(missing.code, 1);
        assert.ok(missing.stderr.includes(path.join(runtimeDir, 'tsgunicorn-nobody.ctl')), missing.stderr);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('USR2: the new master binds <path>.2 beside the old one\'s socket and takes the path when promoted', async () => {
      const dir = tempDir();
      const pidfile = path.join(dir, 'master.pid');
      const file = `${pidfile}.ctl`;
      try {
        await withRunningServer(Server.start(target, [...LOCAL, '-p', pidfile, fixture('app.ts')]), async (server) => {
          const oldMaster = server.pid;
          server.signal('SIGUSR2');
          const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
          await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Control socket at ${file}\\.2$`));
          const viaPidfile = await ctlCli(target, ['--pid', pidfile, '--json', 'stats']);
          assert.equal(JSON.parse(viaPidfile.stdout).pid, oldMaster, viaPidfile.stderr);
          assert.equal((await stats(target, `${file}.2`)).pid, newMaster);
          server.signal('SIGTERM');
          assert.equal((await server.waitForExit()).code, 0);
          await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Master has been promoted`));
          await waitFor('the socket to move to its path', () => (fs.existsSync(file) && !fs.existsSync(`${file}.2`) ? true : undefined));
          assert.equal((await stats(target, file)).pid, newMaster);
          assert.equal((await ctl(target, file, ['shutdown', 'fast'])).code, 0);
          await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Shutting down: Master`));
          await waitFor('the socket file to go', () => (fs.existsSync(file) ? undefined : true));
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

/** Polls `stats` (bounded: 40 tries, 250 ms apart) until `accept` holds. */
async function pollStats(target: TestTarget, file: string, accept: (stats: Stats) => boolean): Promise<Stats> {
  let last: Stats | undefined;
  for (let attempt = 0; attempt < 40; attempt++) {
    last = await stats(target, file);
    if (accept(last)) return last;
    await sleep(250);
  }
  throw new Error(`stats never matched: ${JSON.stringify(last)}`);
}
