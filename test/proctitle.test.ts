// Process titles of the master and a worker on every target: what `ps` shows (/proc/PID/cmdline for `ps -o args`,
// /proc/PID/comm for `ps -o comm`, top and pgrep).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { describeEachTarget, fixture, Server, withRunningServer } from './helpers.ts';

/** The command line `ps -o args` shows: the NUL-separated arguments, joined by spaces, trailing NULs dropped. */
const commandLine = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
const processName = (pid: number) => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();

describeEachTarget('proctitle', (target) => {
  describe(`${target.name}: process titles`, () => {
    it('shows tsgunicorn: master/worker [name] as the command line and tsg-master/tsg-worker as the name', async (t) => {
      if (!fs.existsSync('/proc/self/comm')) return t.skip('no /proc: titles are Linux-only');
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-n', 'probe-title', fixture('app.ts')]), async (server) => {
        const [worker] = server.liveWorkers();
        assert.equal(commandLine(server.pid), 'tsgunicorn: master [probe-title]');
        assert.equal(commandLine(worker), 'tsgunicorn: worker [probe-title]');
        assert.equal(processName(server.pid), 'tsg-master');
        assert.equal(processName(worker), 'tsg-worker');
      });
    });
  });
});
