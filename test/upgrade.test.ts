// USR2 binary upgrade under node, deno and bun: the new master serves on the old one's sockets, takes over when
// the old one exits (pidfile), a second USR2 is refused, WINCH + HUP roll back, and a new master that fails to boot
// leaves the old one serving. The new master outlives the test's child: Server.kill() finds its pid in the log.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeEachTarget, fetchText, fixture, pidOf, requestLoop, Server, sleep, tempDir, waitFor, withRunningServer } from './helpers.ts';

const readPid = (file: string) => {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
};

/** Sends USR2 and returns the new master's pid once its `workers` workers and the old ones serve together. */
async function upgrade(server: Server, workers: number): Promise<number> {
  const before = server.liveWorkers().length;
  server.signal('SIGUSR2');
  const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
  await server.waitForReady(before + workers);
  return newMaster;
}

/** Waits until the master `pid` logged its shutdown (a detached master is not the test's child to wait for). */
const waitForShutdown = (server: Server, pid: number) => server.waitForLine(new RegExp(`\\[${pid}\\] \\[INFO\\] Shutting down: Master`));

describeEachTarget('upgrade', (target) => {
  const { runtime, mode } = target;
  describe(`${target.name}: USR2 binary upgrade`, () => {
    // In reuse-port mode the old workers close their own listening sockets, and the kernel resets a connection queued
    // on one at that instant (unless net.ipv4.tcp_migrate_req=1), as on HUP; Deno.serve's shutdown also drops
    // connections it accepted but has not read (README, "Runtimes and engines").
    const isReset = (message: string) => /other side closed|ECONNRESET|socket hang up/.test(message);
    const lossy = runtime === 'deno' && mode === 'reuse-port';
    const assertNoneLost = (failed: string[]) => {
      if (lossy) return;
      const resets = mode === 'reuse-port' ? failed.filter(isReset) : [];
      assert.deepEqual(failed.filter((failure) => !resets.includes(failure)), []);
      assert.ok(resets.length <= 2, `${resets.length} connections reset: ${resets.join(', ')}`);
    };

    it('hands over to the new master when the old one gets TERM, answering every request; a second USR2 is refused', async () => {
      const dir = tempDir();
      const pidfile = path.join(dir, 'tsgunicorn.pid');
      const socketPath = path.join(dir, 'app.sock');
      const args = ['-b', '127.0.0.1:0', '-b', `unix:${socketPath}`, '-w', '2', '-p', pidfile, fixture('app.ts')];
      try {
        await withRunningServer(Server.start(target, args, { workers: 2 }), async (server) => {
          const oldMaster = server.pid;
          const oldWorkers = server.liveWorkers();
          const loop = requestLoop(`${server.url}/`);
          const newMaster = await upgrade(server, 2);
          assert.equal(readPid(`${pidfile}.2`), newMaster);
          assert.equal(readPid(pidfile), oldMaster);
          server.signal('SIGUSR2');
          await server.waitForLine(new RegExp(`USR2 refused: the new master \\(pid:${newMaster}\\)`));

          server.signal('SIGTERM');
          assert.equal((await server.waitForExit()).code, 0);
          await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Master has been promoted`));
          await waitFor('the pidfile to name the new master', () => (readPid(pidfile) === newMaster ? true : undefined));
          assert.ok(!fs.existsSync(`${pidfile}.2`));
          assert.ok(fs.statSync(socketPath).isSocket(), 'the old master leaves the unix socket file to the new one');
          await sleep(300);
          const result = await loop.stop();
          assertNoneLost(result.failed);
          assert.ok([...result.pids].some((pid) => !oldWorkers.includes(pid)), 'the new master\'s workers answered');
          assert.ok(!oldWorkers.includes(pidOf(await fetchText(`${server.url}/`))));
          assert.ok(!oldWorkers.includes(pidOf(await fetchText('http://localhost/', { socketPath }))));

          process.kill(newMaster, 'SIGTERM');
          await waitForShutdown(server, newMaster);
          await waitFor('the promoted master to remove the pidfile and socket file', () => (
            !fs.existsSync(pidfile) && !fs.existsSync(socketPath) ? true : undefined));
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('rolls back: WINCH stops the old workers, TERM ends the new master, HUP brings the old workers back', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', fixture('app.ts')]), async (server) => {
        const [oldWorker] = server.liveWorkers();
        const newMaster = await upgrade(server, 1);
        server.signal('SIGWINCH');
        await server.waitForLine(new RegExp(`Worker exiting \\(pid: ${oldWorker}\\)`));
        assert.notEqual(pidOf(await fetchText(`${server.url}/`)), oldWorker);

        process.kill(newMaster, 'SIGTERM');
        await server.waitForLine(new RegExp(`New master \\(pid:${newMaster}\\) exited with code 0; .* serves on without workers`));
        server.signal('SIGHUP');
        await server.waitForReady(1);
        const reply = await fetchText(`${server.url}/`);
        assert.equal(reply.status, 200);
        assert.ok(server.liveWorkers().includes(pidOf(reply)));
        assert.equal(server.exit, undefined, 'the old master serves on');
      });
    });

    it('keeps serving when the new master fails to boot (a broken deploy), and lets USR2 try again', async () => {
      const dir = tempDir();
      const app = path.join(dir, 'app.ts');
      fs.copyFileSync(fixture('app.ts'), app);
      try {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', app]), async (server) => {
          fs.writeFileSync(app, 'export default 42;\n');
          server.signal('SIGUSR2');
          const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
          await server.waitForLine(new RegExp(`New master \\(pid:${newMaster}\\) exited with code 4; .* serves on`));
          assert.equal((await fetchText(`${server.url}/`)).status, 200);
          server.signal('SIGUSR2');
          await waitFor('a second new master', () => (server.newMasterPids().length === 2 ? true : undefined));
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
