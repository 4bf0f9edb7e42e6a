// The worker lifecycle in the master under node, deno and bun: the rolling, ready-gated HUP (--reload-batch,
// --boot-timeout, a new worker that fails to boot stops the rollout), the crash-loop backoff (--min-uptime),
// recycling by memory (--max-worker-memory), --pre-stop-delay, and a TERM sent to the whole process group.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from 'undici';
import { describeEachTarget, fetchText, fixture, isAlive, pidOf, requestLoop, Server, sleep, tempDir, waitFor, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];
const GOOD_APP = fs.readFileSync(fixture('app.ts'), 'utf8');
const THROWING_APP = "throw new Error('this version is broken on purpose');\n";
/** Loads, then never finishes loading (the worker's heartbeat keeps the process alive). */
const HANGING_APP = 'await new Promise((resolve) => setTimeout(resolve, 600_000));\nexport default { fetch: () => new Response("late") };\n';
/** Loads and serves, then dies 200 ms after it started. */
const CRASHING_APP = 'setTimeout(() => process.exit(1), 200);\nexport default { fetch: () => new Response(`pid=${process.pid}`) };\n';

/** A temporary folder holding `app.ts` (the test app, to be rewritten by the test). */
function appFolder(): { dir: string; app: string; write(source: string): void; remove(): void } {
  const dir = tempDir();
  const app = path.join(dir, 'app.ts');
  const write = (source: string) => fs.writeFileSync(app, source);
  write(GOOD_APP);
  return { dir, app, write, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Replays the master's log lines (debug level): after each worker event, how many workers were ready and still serving (not told to stop),
 * and how many were serving or booting. Counts only from `from` (a line index) on.
 */
function workerCounts(lines: string[], from: number): { ready: number; accepting: number }[] {
  const booting = new Set<number>();
  const ready = new Set<number>();
  const counts: { ready: number; accepting: number }[] = [];
  lines.forEach((line, index) => {
    let match;
    if ((match = /Spawned worker \(pid:(\d+)\)/.exec(line))) booting.add(Number(match[1]));
    else if ((match = /Worker \(pid:(\d+)\) is ready/.exec(line))) {
      booting.delete(Number(match[1]));
      ready.add(Number(match[1]));
    } else if ((match = /Stopping worker \(pid:(\d+)\)|Worker \(pid:(\d+)\) (exited|was sent)/.exec(line))) {
      const pid = Number(match[1] ?? match[2]);
      booting.delete(pid);
      ready.delete(pid);
    } else {
      return;
    }
    if (index >= from) counts.push({ ready: ready.size, accepting: booting.size + ready.size });
  });
  return counts;
}

describeEachTarget('rolling', (target) => {
  const { mode } = target;
  // In reuse-port mode a stopping worker closes its own listening socket, and the kernel resets a connection
  // queued on it at that instant unless net.ipv4.tcp_migrate_req=1 (README, "Runtimes and engines").
  const isReset = (message: string) => mode === 'reuse-port' && /other side closed|ECONNRESET|socket hang up/.test(message);

  describe(`${target.name}: rolling reload`, () => {
    it('HUP replaces the workers one by one, each old one only once a new one is ready', async () => {
      await withRunningServer(Server.start(target, [...LOCAL, '-w', '3', fixture('app.ts')], { workers: 3 }), async (server) => {
        const before = server.liveWorkers();
        const from = server.lines.length;
        server.signal('SIGHUP');
        await server.waitForLine(/Reload done: 3 workers of the new configuration serve/, 30000);
        const after = await server.waitForReady(3);
        assert.ok(after.every((pid) => !before.includes(pid)), `old workers left: ${after} vs ${before}`);
        const counts = workerCounts(server.lines, from);
        assert.ok(counts.length >= 9, `too few worker events: ${JSON.stringify(counts)}`);
        assert.ok(counts.every((count) => count.ready >= 3), `fewer than 3 ready workers: ${JSON.stringify(counts)}`);
        assert.ok(counts.every((count) => count.accepting <= 4), `more than 3 + 1 workers: ${JSON.stringify(counts)}`);
        assert.match((await fetchText(`${server.url}/`)).body, /^pid=\d+/);
      });
    });

    it('--reload-batch 2 boots two new workers at a time', async () => {
      await withRunningServer(Server.start(target, [...LOCAL, '-w', '3', '--reload-batch', '2', fixture('app.ts')], { workers: 3 }), async (server) => {
        const from = server.lines.length;
        server.signal('SIGHUP');
        await server.waitForLine(/Reload done: 3 workers of the new configuration serve/, 30000);
        const counts = workerCounts(server.lines, from);
        assert.ok(counts.every((count) => count.ready >= 3), `fewer than 3 ready workers: ${JSON.stringify(counts)}`);
        assert.ok(counts.every((count) => count.accepting <= 5), `more than 3 + 2 workers: ${JSON.stringify(counts)}`);
        assert.ok(counts.some((count) => count.accepting === 5), `never two new workers at once: ${JSON.stringify(counts)}`);
      });
    });

    it('a HUP whose new workers fail to boot keeps the old ones serving, and a HUP after the fix rolls', async () => {
      const folder = appFolder();
      try {
        // --boot-timeout is also the time the fixed app's workers have to boot: 5 s was too short on a loaded 2-core
        // machine (a worker took 3 s to log its boot, and was cut).
        const args = [...LOCAL, '-w', '2', '--boot-timeout', '15', folder.app];
        await withRunningServer(Server.start(target, args, { workers: 2 }), async (server) => {
          const before = server.liveWorkers();
          folder.write(THROWING_APP);
          server.signal('SIGHUP');
          await server.waitForLine(/Reload stopped: new worker \(pid:\d+\) exited with code 4 before it was ready; the previous workers keep serving/);
          folder.write(HANGING_APP);
          server.signal('SIGHUP');
          await server.waitForLine(/Reload stopped: new worker \(pid:\d+\) was not ready within --boot-timeout 15 s/, 30000);
          assert.equal(server.exit, undefined, 'the master lives on');
          assert.deepEqual(server.liveWorkers().sort(), [...before].sort());
          for (let i = 0; i < 4; i++) assert.ok(before.includes(pidOf(await fetchText(`${server.url}/`))));
          folder.write(GOOD_APP);
          server.signal('SIGHUP');
          await server.waitForLine(/Reload done: 2 workers of the new configuration serve/, 30000);
          const after = await server.waitForReady(2);
          assert.ok(after.every((pid) => !before.includes(pid)));
          assert.ok(after.includes(pidOf(await fetchText(`${server.url}/`))));
        });
      } finally {
        folder.remove();
      }
    });
  });

  describe(`${target.name}: crashes and memory`, () => {
    it('respawns a worker that dies right after it started with growing delays, and the master lives on', async () => {
      const folder = appFolder();
      try {
        // A --min-uptime well above a worker's boot time on a busy machine (uptime counts from the spawn).
        await withRunningServer(Server.start(target, [...LOCAL, '--min-uptime', '5', folder.app]), async (server) => {
          const [first] = server.liveWorkers();
          folder.write(CRASHING_APP);
          process.kill(first, 'SIGKILL'); // an early death too if it had not lived 5 s yet
          await server.waitForLine(/exited with code 1 \d+\.\d s after it started \(--min-uptime 5 s\): respawning in 2 s/, 30000);
          const delays = server.matches(/respawning in (\d+) s/).map((match) => Number(match[1]));
          assert.deepEqual(delays, [1, 2]);
          assert.equal(server.exit, undefined, 'the master lives on');
          folder.write(GOOD_APP);
          const crashed = new Set(server.allWorkerPids());
          const healthy = await waitFor('a worker of the fixed app', () => server.liveWorkers().find((pid) => !crashed.has(pid)), 20000);
          assert.equal(pidOf(await fetchText(`${server.url}/`)), healthy);
        });
      } finally {
        folder.remove();
      }
    });

    it('--max-worker-memory replaces workers above it one at a time while requests succeed', async () => {
      const args = [...LOCAL, '-w', '2', '--max-worker-memory', '1M', fixture('app.ts')];
      await withRunningServer(Server.start(target, args, { workers: 2 }), async (server) => {
        const loop = requestLoop(`${server.url}/`);
        const recycled = () => server.matches(/Worker \(pid:(\d+)\) uses [\d.]+ MiB, above --max-worker-memory 1\.0 MiB: replacing it/);
        try {
          await waitFor('three workers replaced', () => (recycled().length >= 3 ? true : undefined), 30000);
        } finally {
          const result = await loop.stop();
          assert.ok(result.ok > 0);
          const resets = result.failed.filter(isReset);
          assert.deepEqual(result.failed.filter((failure) => !resets.includes(failure)), []);
          assert.ok(resets.length <= recycled().length, `${resets.length} connections reset`);
        }
        // One at a time: a worker is replaced only once the one replaced before it has exited.
        let replacing: number | undefined;
        for (const line of server.lines) {
          const started = /Worker \(pid:(\d+)\) uses .* replacing it/.exec(line);
          if (started) {
            assert.equal(replacing, undefined, `worker ${started[1]} replaced while ${replacing} still was`);
            replacing = Number(started[1]);
          } else if (replacing !== undefined && new RegExp(`Worker \\(pid:${replacing}\\) exited`).test(line)) {
            replacing = undefined;
          }
        }
      });
    });
  });

  describe(`${target.name}: stopping`, () => {
    it('--pre-stop-delay serves on after a TERM sent to the whole process group, then stops without a respawn', async () => {
      const args = [...LOCAL, '-w', '2', '--pre-stop-delay', '3', fixture('app.ts')];
      await withRunningServer(Server.start(target, args, { workers: 2, detached: true }), async (server) => {
        const workers = server.liveWorkers();
        process.kill(-server.child.pid!, 'SIGTERM');
        await server.waitForLine(/Pre-stop delay: serving 3 s more before draining/);
        for (let i = 0; i < 4; i++) assert.ok(workers.includes(pidOf(await fetchText(`${server.url}/`))));
        assert.equal((await server.waitForExit(20000)).code, 0);
        assert.equal(server.allWorkerPids().length, 2, 'no worker was respawned');
        assert.ok(!server.lines.some((line) => /got SIGTERM/.test(line)));
      });
    });

    it('a TERM or INT sent to the whole process group stops the server without respawning a worker', async () => {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        await withRunningServer(Server.start(target, [...LOCAL, '-w', '2', fixture('app.ts')], { workers: 2, detached: true }), async (server) => {
          const workers = server.liveWorkers();
          process.kill(-server.child.pid!, signal);
          assert.equal((await server.waitForExit(20000)).code, 0);
          assert.equal(server.allWorkerPids().length, 2, `a worker was respawned after ${signal}`);
          await waitFor('the workers to exit', () => (workers.some(isAlive) ? undefined : true), 10000);
        });
      }
    });

    it('a keep-alive connection idle when the drain starts still gets its next request answered', async () => {
      await withRunningServer(Server.start(target, [...LOCAL, fixture('app.ts')]), async (server) => {
        const pool = new Agent({ connections: 1, keepAliveTimeout: 30000 });
        try {
          const first = JSON.parse((await fetchText(`${server.url}/info`, { keepAlive: pool })).body);
          server.signal('SIGTERM');
          await server.waitForLine(/Handling signal: term/);
          // Past the half second for which a drain used to keep an idle keep-alive connection open.
          await sleep(1000);
          const reply = await fetchText(`${server.url}/info`, { keepAlive: pool });
          assert.equal(reply.status, 200);
          assert.equal(JSON.parse(reply.body).remote.port, first.remote.port, 'the same connection');
          assert.equal(reply.headers.connection, 'close');
          assert.equal((await server.waitForExit(20000)).code, 0);
        } finally {
          await pool.close();
        }
      });
    });

    it('a TERM sent to one worker replaces that worker alone', async () => {
      await withRunningServer(Server.start(target, [...LOCAL, '-w', '2', fixture('app.ts')], { workers: 2 }), async (server) => {
        const [victim, other] = server.liveWorkers();
        process.kill(victim, 'SIGTERM');
        await server.waitForLine(new RegExp(`Worker \\(pid:${victim}\\) got SIGTERM`));
        const live = await waitFor('a replacement', () => {
          const now = server.liveWorkers();
          return now.length === 2 && !now.includes(victim) ? now : undefined;
        });
        assert.ok(live.includes(other));
        assert.equal(server.exit, undefined);
      });
    });
  });
});
