// More of the master's life under node, deno and bun: address kinds, quick and escalated stops, log reopening,
// environment settings, keep-alive, HUP re-reading the config file, and serve() from code.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { describeEachTarget, fetchText, fixture, pidOf, type Runnable, runCli, Server, sleep, type StartOptions, tempDir, waitFor, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];

const withServer = withRunningServer;
const start = (runtime: Runnable, args: string[], options?: StartOptions) => Server.start(runtime, args, options);

interface BindOnlyHandle {
  fd: number;
  close(): void;
  getsockname(out: { port?: number }): number;
}

describeEachTarget('lifecycle', (target) => {
  describe(`${target.name}: addresses`, () => {
    it('listens on IPv6 loopback', async () => {
      await withServer(start(target, ['-b', '[::1]:0', fixture('app.ts')]), async (server) => {
        assert.match(server.url, /^http:\/\/\[::1\]:\d+$/);
        const info = JSON.parse((await fetchText(`${server.url}/info`)).body);
        assert.equal(info.remote.hostname, '::1');
      });
    });

    it('serves on a socket it inherited as fd://3', async () => {
      const create = (net as unknown as { _createServerHandle(host: string, port: number, type: number): BindOnlyHandle })._createServerHandle;
      const handle = create('127.0.0.1', 0, 4);
      const bound: { port?: number } = {};
      handle.getsockname(bound);
      try {
        await withServer(start(target, ['-b', 'fd://3', fixture('app.ts')], { extraFds: [handle.fd] }), async (server) => {
          assert.ok(server.lines.some((line) => line.includes('Listening at: fd://3')));
          assert.match((await fetchText(`http://127.0.0.1:${bound.port}/`)).body, /^pid=\d+/);
        });
      } finally {
        handle.close();
      }
    });

    it('replaces a stale unix socket file, and refuses a path that is not a socket', async () => {
      const dir = tempDir();
      try {
        const socketPath = path.join(dir, 'stale.sock');
        const python = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(socketPath)})`]);
        assert.equal(python.status, 0, String(python.stderr));
        assert.ok(fs.statSync(socketPath).isSocket());
        await withServer(start(target, ['-b', `unix:${socketPath}`, fixture('app.ts')]), async () => {
          assert.match((await fetchText('http://localhost/', { socketPath })).body, /^pid=\d+/);
        });
        const plainFile = path.join(dir, 'not-a-socket');
        fs.writeFileSync(plainFile, 'data');
        const refused = await runCli(target, ['-b', `unix:${plainFile}`, fixture('app.ts')]);
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, /exists and is not a socket/);
        assert.equal(fs.readFileSync(plainFile, 'utf8'), 'data');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe(`${target.name}: stopping and logs`, () => {
    it('stops quickly on INT, cutting in-flight requests', async () => {
      await withServer(start(target, [...LOCAL, fixture('app.ts')]), async (server) => {
        const slow = fetchText(`${server.url}/slow?ms=20000`, { timeoutMs: 20000 }).catch((error) => error);
        await sleep(300);
        server.signal('SIGINT');
        // The master is gone long before the slow request's 20 s, and that request was cut (an error, not its answer).
        assert.equal((await server.waitForExit(15000)).code, 0);
        assert.ok((await slow) instanceof Error);
        assert.ok(server.lines.some((line) => line.includes('Handling signal: int')));
      });
    });

    it('escalates a second TERM to a quick stop', async () => {
      await withServer(start(target, [...LOCAL, fixture('app.ts')]), async (server) => {
        const slow = fetchText(`${server.url}/slow?ms=20000`, { timeoutMs: 20000 }).catch((error) => error);
        await sleep(300);
        server.signal('SIGTERM');
        await sleep(300);
        assert.equal(server.exit, undefined, 'a graceful stop waits for the slow request');
        server.signal('SIGTERM');
        // Gone before the slow request's 20 s, which was cut (an error, not its answer).
        await server.waitForExit(15000);
        assert.ok((await slow) instanceof Error);
      });
    });

    it('closes idle keep-alive connections on TERM after at most 5 s, not after their --keep-alive of 60 s', async () => {
      await withServer(start(target, [...LOCAL, '--keep-alive', '60', fixture('app.ts')]), async (server) => {
        const agent = new Agent({ keepAliveTimeout: 60000, connections: 1 });
        try {
          const first = await request(`${server.url}/`, { dispatcher: agent });
          const second = await request(`${server.url}/`, { dispatcher: agent });
          const [a, b] = [await first.body.text(), await second.body.text()];
          assert.equal(pidOf({ status: 200, body: a, headers: {} }), pidOf({ status: 200, body: b, headers: {} }));
          assert.notEqual(second.headers.connection, 'close');
          const before = Date.now();
          server.signal('SIGTERM');
          // The drain keeps an idle keep-alive connection for a request its client may be sending (src/http/connections.ts,
          // drainIdleMs()), 5 s at most.
          assert.equal((await server.waitForExit(20000)).code, 0);
          assert.ok(Date.now() - before < 15000, 'the idle connection did not hold the worker for its keep-alive timeout');
        } finally {
          await agent.close();
        }
      });
    });

    // Deno.serve and Bun.serve cannot stop accepting without closing every idle keep-alive connection, and tell no one
    // which connections are idle: a worker that served nothing lately stops at once, one that did serves on.
    const nativeServer = target.runtime !== 'node' && target.mode === 'reuse-port';
    const inheritOnly = !nativeServer && 'node-http and bun-listen close their listener at once and time each connection (the keep-alive tests)';

    it('a native server\'s worker that served nothing lately stops at once on TERM, closing its quiet connections', { skip: inheritOnly }, async () => {
      await withServer(start(target, [...LOCAL, '--keep-alive', '60', fixture('app.ts')]), async (server) => {
        const quiet = net.connect(Number(new URL(server.url).port), '127.0.0.1');
        let closed = false;
        let received = '';
        quiet.on('close', () => (closed = true));
        quiet.on('error', () => {});
        quiet.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
        await new Promise((resolve) => quiet.on('connect', resolve));
        server.signal('SIGTERM');
        await server.waitForLine(/Draining: no request for 5 s, closing idle connections now/);
        assert.equal((await server.waitForExit(20000)).code, 0);
        assert.ok(!server.lines.some((line) => line.includes('Draining: serving on')));
        // Deno.serve closed it; Bun.serve drops it without a FIN (its client learns on its next write, with a reset).
        if (!closed) quiet.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await waitFor('the quiet connection to close', () => closed || undefined);
        assert.equal(received, '');
      });
    });

    it('a native server\'s worker that just served serves on: the idle keep-alive connection\'s next request is answered with Connection: close', { skip: inheritOnly }, async () => {
      await withServer(start(target, [...LOCAL, '--keep-alive', '2', fixture('app.ts')]), async (server) => {
        const client = net.connect(Number(new URL(server.url).port), '127.0.0.1');
        client.on('error', () => {});
        let received = '';
        client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
        let closed = false;
        client.on('close', () => (closed = true));
        client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await waitFor('the first response', () => /pid=\d+/.test(received) || undefined);
        server.signal('SIGTERM');
        await server.waitForLine(/Draining: serving on \d\.\d s/);
        received = '';
        client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        await waitFor('the second response', () => /pid=\d+/.test(received) || undefined);
        assert.match(received, /^HTTP\/1\.1 200/);
        assert.match(received, /\r\nconnection: close\r\n/i);
        await waitFor('the connection to close', () => closed || undefined);
        assert.equal((await server.waitForExit(20000)).code, 0);
      });
    });

    it('reopens log files on USR1, in the master and the workers', async () => {
      const dir = tempDir();
      const logFile = path.join(dir, 'error.log');
      try {
        const args = [...LOCAL, '--error-logfile', logFile, '--access-logfile', path.join(dir, 'access.log'), fixture('app.ts')];
        await withServer(start(target, args, { logFile }), async (server) => {
          const url = server.url;
          fs.renameSync(logFile, `${logFile}.1`);
          fs.renameSync(path.join(dir, 'access.log'), path.join(dir, 'access.log.1'));
          server.signal('SIGUSR1');
          await waitFor('the master to reopen its log', () => (fs.existsSync(logFile) ? true : undefined));
          await sleep(300);
          assert.equal((await fetchText(`${url}/throw`)).status, 500);
          await waitFor('the worker to log into the new file', () => (fs.readFileSync(logFile, 'utf8').includes('boom from the test app') ? true : undefined));
          await waitFor('the access log to be reopened', () => (fs.existsSync(path.join(dir, 'access.log')) && fs.readFileSync(path.join(dir, 'access.log'), 'utf8').includes('GET /throw') ? true : undefined));
          assert.match(fs.readFileSync(`${logFile}.1`, 'utf8'), /Booting worker with pid/);
        }).catch((error) => {
          throw new Error(`${(error as Error).message}\n--- error.log ---\n${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '(none)'}`);
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe(`${target.name}: settings at work`, () => {
    it('applies -e, --chdir and -n', async () => {
      const args = [...LOCAL, '-e', 'GREETING=hello world', '--chdir', path.dirname(fixture('app.ts')), '-n', 'probe-app', 'app.ts'];
      await withServer(start(target, args), async (server) => {
        assert.equal((await fetchText(`${server.url}/env/GREETING`)).body, 'hello world');
        // -n's process titles: test/proctitle.test.ts
        const [worker] = server.liveWorkers();
        assert.match(fs.readFileSync(`/proc/${worker}/cmdline`, 'utf8'), /tsgunicorn: worker \[probe-app\]/);
      });
    });

    it('re-reads the config file on HUP, opening an added bind', async () => {
      const dir = tempDir();
      try {
        const config = path.join(dir, 'tsgunicorn.config.json');
        fs.writeFileSync(config, JSON.stringify({ workers: 1, app: fixture('app.ts'), bind: ['127.0.0.1:0'] }));
        await withServer(start(target, [], { cwd: dir }), async (server) => {
          const [old] = server.liveWorkers();
          const socketPath = path.join(dir, 'added.sock');
          fs.writeFileSync(config, JSON.stringify({ workers: 2, app: fixture('app.ts'), bind: ['127.0.0.1:0', `unix:${socketPath}`], env: ['RELOADED=yes'] }));
          server.signal('SIGHUP');
          await waitFor('two new workers and the old one gone', () => {
            const live = server.liveWorkers();
            return live.length === 2 && !live.includes(old) ? live : undefined;
          });
          assert.equal((await fetchText(`${server.url}/env/RELOADED`)).body, 'yes');
          assert.equal((await fetchText('http://localhost/env/RELOADED', { socketPath })).body, 'yes', 'the added bind serves');
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('runs from code with serve() from mod.ts', async () => {
      await withServer(Server.startScript(target, fixture('serve-script.ts'), [...LOCAL, '-w', '2'], { workers: 2 }), async (server) => {
        const reply = await fetchText(`${server.url}/`);
        assert.match(reply.body, /^serve\(\) pid=\d+ worker=[01]$/);
        assert.ok(server.liveWorkers().includes(pidOf(reply)));
      });
    });
  });
});
