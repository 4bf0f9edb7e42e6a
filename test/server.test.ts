// Integration tests: the real CLI under node, deno and bun (a matrix), serving over loopback.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from 'undici';
import { describeEachTarget, fetchText, fixture, isAlive, pidOf, type Reply, requestLoop, type Runnable, Server, sleep, type StartOptions, tempDir, waitFor, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];

/** Starts the CLI under `runtime` with `args`, runs `body`, and kills everything. */
function withServer(runtime: Runnable, args: string[], body: (server: Server) => Promise<void>, options: StartOptions = {}): Promise<void> {
  return withRunningServer(Server.start(runtime, args, options), body);
}

/** Sends HUP and waits until two workers, none of them in `before`, serve and the old ones have exited. */
async function hupAndWaitForNewWorkers(server: Server, before: number[]): Promise<void> {
  server.signal('SIGHUP');
  await waitFor('all-new workers', () => {
    const live = server.liveWorkers();
    return live.length === 2 && live.every((pid) => !before.includes(pid)) ? live : undefined;
  }, 20000);
  await waitFor('old workers to exit', () => (before.some(isAlive) ? undefined : true));
}

describeEachTarget('server', (target) => {
  const { runtime, mode } = target;
  describe(`${target.name}: serving`, () => {
    it('serves a Hono app and a plain fetch app', async () => {
      await withServer(target, [...LOCAL, fixture('hono-app.ts')], async (server) => {
        const reply = await fetchText(`${server.url}/`);
        assert.equal(reply.status, 200);
        assert.match(reply.body, /^hono pid=\d+$/);
        const json = await fetchText(`${server.url}/json`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
        assert.deepEqual(JSON.parse(json.body).got, { a: 1 });
      });
      await withServer(target, [...LOCAL, fixture('app.ts')], async (server) => {
        const reply = await fetchText(`${server.url}/info?x=1`);
        const info = JSON.parse(reply.body);
        assert.equal(info.url, `${server.url}/info?x=1`);
        assert.equal(info.remote.hostname, '127.0.0.1');
        assert.ok(info.remote.port > 0);
      });
    });

    it('serves a named function export (app.ts:handler)', async () => {
      await withServer(target, [...LOCAL, `${fixture('function-app.ts')}:handler`], async (server) => {
        assert.match((await fetchText(`${server.url}/`)).body, /^function pid=\d+$/);
      });
    });

    it('listens on two binds, one of them a unix socket, and removes the socket file at exit', async () => {
      const dir = tempDir();
      const socketPath = path.join(dir, 'app.sock');
      try {
        await withServer(target, [...LOCAL, '-b', `unix:${socketPath}`, fixture('app.ts')], async (server) => {
          assert.match((await fetchText(`${server.url}/`)).body, /^pid=\d+/);
          assert.match((await fetchText('http://localhost/', { socketPath })).body, /^pid=\d+/);
          server.signal('SIGTERM');
          assert.equal((await server.waitForExit()).code, 0);
          assert.equal(fs.existsSync(socketPath), false);
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('runs 2 workers that both answer, with stable TSGUNICORN_WORKER_ID slots', async () => {
      await withServer(target, [...LOCAL, '-w', '2', fixture('app.ts')], async (server) => {
        const live = server.liveWorkers();
        const seen = new Map<number, string>();
        for (let i = 0; i < 400 && seen.size < 2; i++) {
          const reply = await fetchText(`${server.url}/`);
          seen.set(pidOf(reply), /worker=(\d+)/.exec(reply.body)![1]);
          if (i % 20 === 19) await Promise.all([fetchText(`${server.url}/slow?ms=50`), fetchText(`${server.url}/slow?ms=50`)]);
        }
        assert.deepEqual([...seen.keys()].sort(), [...live].sort());
        assert.deepEqual([...seen.values()].sort(), ['0', '1']);
      }, { workers: 2 });
    });

    it('answers 500 when the handler throws, and the worker lives on', async () => {
      await withServer(target, [...LOCAL, fixture('app.ts')], async (server) => {
        const [pid] = server.liveWorkers();
        assert.equal((await fetchText(`${server.url}/throw`)).status, 500);
        assert.equal(pidOf(await fetchText(`${server.url}/`)), pid);
        assert.ok(server.lines.some((line) => line.includes('boom from the test app')));
      });
    });

    it('streams a request body back and survives a client that hangs up mid-response', async () => {
      await withServer(target, [...LOCAL, fixture('app.ts')], async (server) => {
        const payload = 'x'.repeat(256 * 1024);
        const echo = await fetchText(`${server.url}/echo`, { method: 'POST', body: payload });
        assert.equal(echo.body, payload);
        const controller = new AbortController();
        const pending = fetch(`${server.url}/slow?ms=300`, { signal: controller.signal }).catch(() => 'aborted');
        await sleep(100);
        controller.abort();
        assert.equal(await pending, 'aborted');
        await sleep(400);
        assert.match((await fetchText(`${server.url}/`)).body, /^pid=\d+/);
      });
    });

    it('writes Gunicorn-style access log lines with --access-logfile -', async () => {
      await withServer(target, [...LOCAL, '--access-logfile', '-', fixture('app.ts')], async (server) => {
        await fetchText(`${server.url}/info?q=1`, { headers: { 'user-agent': 'tsgunicorn-test' } });
        await server.waitForLine(/^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:[\d:]{8} [+-]\d{4}\] "GET \/info\?q=1 HTTP\/1\.1" 200 (\d+|-) "-" "tsgunicorn-test"$/);
      });
    });
  });

  describe(`${target.name}: supervision`, () => {
    // In reuse-port mode a worker that stops closes its own listening socket, and the kernel resets a connection
    // queued on it at that instant (unless net.ipv4.tcp_migrate_req=1); README, "Runtimes and engines".
    const isReset = (message: string) => /other side closed|ECONNRESET|socket hang up/.test(message);
    /** Fails on any failure but the connection resets a restart may cause in this mode, at most `allowed`. */
    const assertRestartFailures = (failed: string[], allowed: number) => {
      const resets = mode === 'reuse-port' ? failed.filter(isReset) : [];
      assert.deepEqual(failed.filter((failure) => !resets.includes(failure)), []);
      assert.ok(resets.length <= allowed, `${resets.length} connections reset: ${resets.join(', ')}`);
    };
    /** A request that recycling tests send: in reuse-port mode a reset connection is retried (twice at most). */
    const getAcrossRestarts = async (url: string, retries = mode === 'reuse-port' ? 2 : 0): Promise<Reply> => {
      try {
        return await fetchText(url);
      } catch (error) {
        if (retries > 0 && isReset(String(error))) return getAcrossRestarts(url, retries - 1);
        throw error;
      }
    };
    // Deno.serve's shutdown also closes accepted connections it has not read a request from, and idle
    // keep-alive ones (it ignores a response's Connection: close), so its losses are not bounded by socket count.
    const lossyRestarts = runtime === 'deno' && mode === 'reuse-port' && 'Deno.serve loses requests when a worker stops';

    it('respawns a worker killed with SIGKILL while requests flow, and no request fails', async () => {
      await withServer(target, [...LOCAL, '-w', '2', fixture('app.ts')], async (server) => {
        const [victim] = server.liveWorkers();
        const loop = requestLoop(`${server.url}/`);
        await sleep(300);
        // SIGKILL loses whatever the victim is serving at that instant, so it dies between two requests; the
        // requests then keep flowing while it is reaped and replaced.
        await loop.pause();
        process.kill(victim, 'SIGKILL');
        // A reuse-port worker's own socket takes its share of new connections until the kernel closes it.
        const reaped = server.waitForLine(new RegExp(`Worker \\(pid:${victim}\\) was sent SIGKILL`));
        if (mode === 'reuse-port') await reaped;
        loop.resume();
        await reaped;
        const live = await server.waitForReady(2);
        await sleep(300);
        const result = await loop.stop();
        assert.deepEqual(result.failed, []);
        assert.ok(result.ok > 10, `only ${result.ok} requests`);
        assert.ok(!live.includes(victim));
      }, { workers: 2 });
    });

    it('lets an in-flight request finish on TERM, then exits 0', async () => {
      await withServer(target, [...LOCAL, fixture('app.ts')], async (server) => {
        const slow = fetchText(`${server.url}/slow?ms=1500`);
        await sleep(300);
        server.signal('SIGTERM');
        const reply = await slow;
        assert.equal(reply.status, 200);
        assert.match(reply.body, /^slow done/);
        assert.equal((await server.waitForExit()).code, 0);
        assert.ok(server.lines.some((line) => line.includes('Handling signal: term')));
        assert.ok(server.lines.some((line) => line.includes('Shutting down: Master')));
      });
    });

    it('adds a worker on TTIN and retires the oldest on TTOU', async () => {
      await withServer(target, [...LOCAL, '-w', '2', fixture('app.ts')], async (server) => {
        const before = server.liveWorkers();
        server.signal('SIGTTIN');
        const three = await server.waitForReady(3);
        server.signal('SIGTTOU');
        const two = await server.waitForReady(2);
        const oldest = Math.min(...before); // spawned first: pids grow with spawn order
        assert.ok(!two.includes(oldest), 'the oldest worker goes first');
        assert.equal(three.length, 3);
        assert.equal(before.length, 2);
        server.signal('SIGTTOU');
        await server.waitForReady(1);
        server.signal('SIGTTOU');
        await sleep(500);
        assert.equal(server.liveWorkers().length, 1, 'never below one worker');
      }, { workers: 2 });
    });

    it('replaces every worker on HUP without failing a request', { skip: lossyRestarts }, async () => {
      await withServer(target, [...LOCAL, '-w', '2', fixture('app.ts')], async (server) => {
        const before = server.liveWorkers();
        const loop = requestLoop(`${server.url}/`);
        await sleep(300);
        await hupAndWaitForNewWorkers(server, before);
        await sleep(300);
        const result = await loop.stop();
        assertRestartFailures(result.failed, 2);
        assert.ok(server.lines.some((line) => line.includes('Hang up: Master')));
      }, { workers: 2 });
    });

    it('replaces every worker on HUP without failing a request on keep-alive connections', { skip: lossyRestarts }, async () => {
      await withServer(target, [...LOCAL, '-w', '2', fixture('app.ts')], async (server) => {
        const pool = new Agent({ connections: 4, keepAliveTimeout: 30000 });
        try {
          const loops = [1, 2, 3, 4].map(() => requestLoop(`${server.url}/`, 20000, pool));
          await sleep(300);
          for (let reload = 0; reload < 2; reload++) {
            const before = server.liveWorkers();
            await hupAndWaitForNewWorkers(server, before);
          }
          const results = await Promise.all(loops.map((loop) => loop.stop()));
          assertRestartFailures(results.flatMap((result) => result.failed), 4);
          assert.ok(results.every((result) => result.ok > 10));
        } finally {
          await pool.close();
        }
      }, { workers: 2 });
    });

    it('kills a worker whose event loop is blocked, at the timeout, while the other keeps serving', async () => {
      await withServer(target, [...LOCAL, '-w', '2', '-t', '2', fixture('app.ts')], async (server) => {
        const before = server.liveWorkers();
        const blocked = fetchText(`${server.url}/block`, { timeoutMs: 15000 }).catch((error) => error);
        await sleep(200);
        const loop = requestLoop(`${server.url}/`);
        const timeoutLine = await server.waitForLine(/WORKER TIMEOUT \(pid:(\d+)\)/, 10000);
        const victim = Number(timeoutLine[1]);
        assert.ok(before.includes(victim));
        await server.waitForLine(new RegExp(`Worker \\(pid:${victim}\\) was sent SIGKILL`), 10000);
        await server.waitForReady(2);
        const result = await loop.stop();
        // In reuse-port mode the blocked worker's own socket holds its share of new connections until it is
        // killed: the one request the sequential loop had there fails; with inherited sockets none does.
        assert.ok(result.failed.length <= (mode === 'reuse-port' ? 1 : 0), result.failed.join(', '));
        assert.ok(result.ok > 0);
        assert.ok((await blocked) instanceof Error, 'the blocked request fails');
      }, { workers: 2 });
    });

    it('recycles a worker after --max-requests', async () => {
      await withServer(target, [...LOCAL, '--max-requests', '5', fixture('app.ts')], async (server) => {
        const pids = new Set<number>();
        // In reuse-port mode the worker serves on until its replacement is ready, so keep asking for a while.
        const deadline = Date.now() + 10000;
        for (let i = 0; i < 2000 && (i < 12 || (pids.size < 2 && Date.now() < deadline)); i++) {
          const reply = await getAcrossRestarts(`${server.url}/`);
          assert.equal(reply.status, 200);
          pids.add(pidOf(reply));
        }
        assert.ok(pids.size >= 2, `expected a recycled worker, saw pids ${[...pids]}`);
        assert.ok(server.lines.some((line) => line.includes('Autorestarting worker after current request.')));
      });
    });

    it('gives each worker max-requests plus a jitter of 0..J requests', async () => {
      await withServer(target, [...LOCAL, '--max-requests', '2', '--max-requests-jitter', '2', fixture('app.ts')], async (server) => {
        const served = new Map<number, number>();
        const retired = () => server.matches(/Worker exiting \(pid: (\d+)\)/).map((m) => Number(m[1]));
        const deadline = Date.now() + 15000;
        for (let i = 0; i < 2000 && (i < 16 || (retired().length < 3 && Date.now() < deadline)); i++) {
          const pid = pidOf(await getAcrossRestarts(`${server.url}/`));
          served.set(pid, (served.get(pid) ?? 0) + 1);
        }
        // A replaced Deno.serve or Bun.serve worker serves on for a keep-alive timeout (5 s) before it exits.
        await waitFor('three workers to retire', () => (retired().length >= 3 ? true : undefined), 20000).catch(() => {});
        assert.ok(retired().length >= 3, `only ${retired().length} workers retired`);
        // A reuse-port worker past its limit serves on (with Connection: close) until its replacement is ready.
        const most = mode === 'reuse-port' ? Infinity : 4;
        for (const pid of retired()) {
          const count = served.get(pid) ?? 0;
          assert.ok(count >= 2 && count <= most, `worker ${pid} served ${count} requests`);
        }
      });
    });

    it('kills workers still busy after --graceful-timeout', async () => {
      await withServer(target, [...LOCAL, '--graceful-timeout', '1', fixture('app.ts')], async (server) => {
        const slow = fetchText(`${server.url}/slow?ms=20000`, { timeoutMs: 20000 }).catch((error) => error);
        await sleep(300);
        const before = Date.now();
        server.signal('SIGTERM');
        await server.waitForExit(10000);
        assert.ok(Date.now() - before < 5000, `took ${Date.now() - before} ms`);
        assert.ok((await slow) instanceof Error);
      });
    });

    it('keeps the running configuration when HUP finds a bad config file', async () => {
      const dir = tempDir();
      try {
        const config = path.join(dir, 'tsgunicorn.config.json');
        fs.writeFileSync(config, JSON.stringify({ app: fixture('app.ts'), bind: ['127.0.0.1:0'] }));
        await withRunningServer(Server.start(target, [], { cwd: dir }), async (server) => {
          const [worker] = server.liveWorkers();
          fs.writeFileSync(config, JSON.stringify({ app: fixture('app.ts'), bind: ['127.0.0.1:0'], workers: 'lots' }));
          server.signal('SIGHUP');
          await server.waitForLine(/Reload failed, keeping the current configuration: .*workers/);
          assert.deepEqual(server.liveWorkers(), [worker]);
          assert.equal(pidOf(await fetchText(`${server.url}/`)), worker);
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('workers exit by themselves when the master is killed', async () => {
      const server = await Server.start(target, [...LOCAL, '-w', '2', fixture('app.ts')], { workers: 2 });
      try {
        const workers = server.liveWorkers();
        process.kill(server.pid, 'SIGKILL');
        await waitFor('orphaned workers to exit', () => (workers.some(isAlive) ? undefined : true), 10000);
      } finally {
        await server.kill();
      }
    });

    it('writes the pidfile, refuses to start over a live one, and removes it at exit', async () => {
      const dir = tempDir();
      const pidfile = path.join(dir, 'master.pid');
      try {
        await withServer(target, [...LOCAL, '-p', pidfile, fixture('app.ts')], async (server) => {
          assert.equal(fs.readFileSync(pidfile, 'utf8').trim(), String(server.pid));
          const second = await Server.start(target, [...LOCAL, '-p', pidfile, fixture('app.ts')]).catch((error) => error);
          assert.match(String(second), /Already running on PID/);
          server.signal('SIGTERM');
          await server.waitForExit();
          assert.equal(fs.existsSync(pidfile), false);
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
