// systemd, simulated: the test binds the sockets itself and passes them as fds 3 and 4 with LISTEN_FDS, LISTEN_PID
// (set to the master's own pid by a shell that execs it, as systemd sets it after fork) and LISTEN_FDNAMES, and reads
// the sd_notify datagrams on a unix datagram socket of its own (NOTIFY_SOCKET): READY=1, RELOADING=1, STOPPING=1.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeFd } from '../src/fd-address.ts';
import type { Logger } from '../src/glogging.ts';
import type { Runtime } from '../src/runtime/index.ts';
import { SystemdNotifier, takeActivatedSockets, takeNotifySocket } from '../src/systemd.ts';
import { SystemdWatchdog, takeWatchdogInterval } from '../src/systemd-watchdog.ts';
import { BIN, cliCommand, describeEachTarget, fetchText, fixture, Server, tempDir, waitFor, withRunningServer } from './helpers.ts';

interface ListeningHandle {
  fd: number;
  listen(backlog: number): number;
  close(): void;
  getsockname(out: { port?: number }): number;
}

type CreateServerHandle = (address: string, port: number, addressType: number) => ListeningHandle;
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;

/** Node sends sd_notify datagrams with systemd's systemd-notify: a machine without systemd may lack it. */
const hasSystemdNotify = spawnSync('systemd-notify', ['--version']).status === 0;

/** A unix datagram socket that records what it receives (Deno binds it: Node cannot). */
class NotifySocket {
  readonly path: string;
  readonly datagrams: string[] = [];
  readonly #child: ChildProcess;

  constructor(dir: string) {
    this.path = path.join(dir, 'notify.sock');
    this.#child = spawn(path.join(BIN, 'deno'), ['run', '-A', '--unstable-net', fixture('notify-receiver.ts'), this.path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let rest = '';
    this.#child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop()!;
      for (const line of lines) if (line !== 'listening') this.datagrams.push(JSON.parse(line));
    });
  }

  /** Waits until the socket exists. */
  ready(): Promise<boolean> {
    return waitFor('the notify socket', () => fs.existsSync(this.path) || undefined);
  }

  /** The `count`-th datagram (1-based) that has `field` (READY=1, …), once it arrived. */
  nth(field: string, count = 1): Promise<string> {
    return waitFor(`datagram #${count} with ${field}`, () => this.datagrams.filter((d) => d.split('\n').includes(field))[count - 1]);
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

describe('systemd: environment and sockets', () => {
  it('takes LISTEN_FDS only when LISTEN_PID is this process, and removes the variables either way', () => {
    const env: Record<string, string | undefined> = { LISTEN_PID: String(process.pid), LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:', PATH: '/bin' };
    assert.deepEqual(takeActivatedSockets(env), [{ fd: 3, name: 'web' }, { fd: 4, name: undefined }]);
    assert.deepEqual(env, { PATH: '/bin' });
    const parents: Record<string, string | undefined> = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' };
    assert.equal(takeActivatedSockets(parents), undefined);
    assert.deepEqual(parents, {});
    assert.equal(takeActivatedSockets({ LISTEN_PID: String(process.pid), LISTEN_FDS: 'none' }), undefined);
    const notify: Record<string, string | undefined> = { NOTIFY_SOCKET: '@abstract' };
    assert.equal(takeNotifySocket(notify), '@abstract');
    assert.deepEqual(notify, {});
  });

  it('takes WATCHDOG_USEC when WATCHDOG_PID is unset or this process, and removes both variables either way', () => {
    const env: Record<string, string | undefined> = { WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid), PATH: '/bin' };
    assert.equal(takeWatchdogInterval(env), 30000);
    assert.deepEqual(env, { PATH: '/bin' });
    assert.equal(takeWatchdogInterval({ WATCHDOG_USEC: '500000' }), 500);
    const parents: Record<string, string | undefined> = { WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid + 1) };
    assert.equal(takeWatchdogInterval(parents), undefined);
    assert.deepEqual(parents, {});
    for (const usec of ['', '0', '-5', 'soon']) assert.equal(takeWatchdogInterval({ WATCHDOG_USEC: usec }), undefined, usec);
  });

  it('sends WATCHDOG=1 when asked at half the interval or later, and never without NOTIFY_SOCKET or an interval', () => {
    const sent: string[] = [];
    const runtime = { notify: (_socket: string, datagram: string) => sent.push(datagram) } as unknown as Runtime;
    const notifier = new SystemdNotifier('/run/notify', runtime, () => ({}) as Logger);
    const watchdog = new SystemdWatchdog(1000, notifier);
    for (const now of [10_000, 10_100, 10_499, 10_500, 10_999, 11_000]) watchdog.beat(now);
    assert.deepEqual(sent, ['WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1']);
    assert.equal(watchdog.dueAt, 11_500);
    for (const idle of [new SystemdWatchdog(undefined, notifier), new SystemdWatchdog(1000, new SystemdNotifier(undefined, runtime, () => ({}) as Logger))]) {
      idle.beat(20_000);
      assert.equal(idle.dueAt, Infinity);
    }
    assert.equal(sent.length, 3);
  });

  it('reads an inherited socket\'s address from /proc: IPv4, IPv6, unix', async () => {
    const dir = tempDir();
    const servers = [net.createServer(), net.createServer(), net.createServer()];
    try {
      const listen = (server: net.Server, ...args: unknown[]) => new Promise((resolve) => server.listen(...(args as []), resolve));
      await listen(servers[0], 0, '127.0.0.1');
      await listen(servers[1], 0, '::1');
      await listen(servers[2], path.join(dir, 'x.sock'));
      const fdOf = (server: net.Server) => (server as unknown as { _handle: { fd: number } })._handle.fd;
      const port = (server: net.Server) => (server.address() as net.AddressInfo).port;
      assert.deepEqual(describeFd(fdOf(servers[0])), { kind: 'tcp', address: { kind: 'tcp', host: '127.0.0.1', port: port(servers[0]), family: 4 } });
      assert.deepEqual(describeFd(fdOf(servers[1])), { kind: 'tcp', address: { kind: 'tcp', host: '::1', port: port(servers[1]), family: 6 } });
      assert.deepEqual(describeFd(fdOf(servers[2])), { kind: 'unix', path: path.join(dir, 'x.sock') });
      const file = fs.openSync(path.join(dir, 'plain'), 'w');
      assert.equal(describeFd(file), undefined);
      fs.closeSync(file);
    } finally {
      for (const server of servers) server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends nothing without NOTIFY_SOCKET; a message it cannot send is a warning once, then a debug line', () => {
    const sent: string[] = [];
    const lines: string[] = [];
    const runtime = {
      notify(socket: string, datagram: string) {
        if (socket === '/gone') throw new Error('ENOENT');
        sent.push(datagram);
      },
      monotonicMicroseconds: () => 42n,
    } as unknown as Runtime;
    const logger = { warning: (line: string) => lines.push(`warning ${line}`), debug: (line: string) => lines.push(`debug ${line}`) } as unknown as Logger;
    new SystemdNotifier(undefined, runtime, () => logger).ready('up');
    assert.deepEqual(sent, []);
    const notifier = new SystemdNotifier('/run/notify', runtime, () => logger);
    notifier.reloading('Reloading');
    notifier.ready('up');
    assert.deepEqual(sent, ['RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=Reloading', 'READY=1\nSTATUS=up']);
    const failing = new SystemdNotifier('/gone', runtime, () => logger);
    failing.stopping('Stopping');
    failing.stopping('Stopping');
    assert.deepEqual(lines, ['warning Cannot notify systemd at /gone: ENOENT', 'debug Cannot notify systemd at /gone: ENOENT']);
  });
});

describeEachTarget('systemd', (target) => {
  const { runtime } = target;
  describe(`${target.name}: systemd`, () => {
    it('serves on the sockets systemd passes, never unlinks them, sends READY=1, RELOADING=1, STOPPING=1; USR2 keeps them', {
      skip: runtime === 'node' && !hasSystemdNotify && 'Node sends sd_notify with systemd-notify, which is not installed here',
    }, async () => {
      const dir = tempDir();
      const notify = new NotifySocket(dir);
      const unixPath = path.join(dir, 'activated.sock');
      const tcp = createServerHandle('127.0.0.1', 0, 4);
      const unix = createServerHandle(unixPath, -1, -1);
      try {
        await notify.ready();
        const bound: { port?: number } = {};
        tcp.getsockname(bound);
        // systemd's sockets listen before the service starts. The test never accepts on the TCP one: it closes its
        // copy right after the spawn, before its event loop could. It keeps the unix one bound only, until the end:
        // libuv removes a unix socket's file when it closes its listener (the first worker makes it listen).
        assert.equal(tcp.listen(16), 0);
        const shell = ['sh', '-c', 'export LISTEN_PID=$$; exec "$0" "$@"', ...cliCommand(target)];
        const starting = Server.startCommand(shell, ['-b', '127.0.0.1:1', '-w', '2', fixture('app.ts')], {
          extraFds: [tcp.fd, unix.fd],
          workers: 2,
          env: { LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:local', NOTIFY_SOCKET: notify.path },
        });
        tcp.close();
        await withRunningServer(starting, async (server) => {
          assert.ok(server.lines.some((line) => line.includes(`Listening at: http://127.0.0.1:${bound.port} (${server.pid})`)));
          assert.ok(server.lines.some((line) => line.includes(`Listening at: unix:${unixPath} (${server.pid})`)));
          assert.ok(!server.lines.some((line) => line.includes('127.0.0.1:1 ')), '--bind is not used');
          assert.match((await fetchText(`http://127.0.0.1:${bound.port}/`)).body, /^pid=\d+/);
          assert.match((await fetchText('http://localhost/', { socketPath: unixPath })).body, /^pid=\d+/);
          for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET']) {
            assert.equal((await fetchText(`http://127.0.0.1:${bound.port}/env/${name}`)).body, '', `a worker sees ${name}`);
          }

          assert.match(await notify.nth('READY=1'), /^READY=1\nSTATUS=Serving with 2 worker\(s\)$/);
          const before = process.hrtime.bigint() / 1000n;
          const oldWorkers = server.liveWorkers();
          server.signal('SIGHUP');
          const reloading = await notify.nth('RELOADING=1');
          const monotonic = BigInt(/MONOTONIC_USEC=(\d+)/.exec(reloading)![1]);
          // CLOCK_MONOTONIC, the clock the test's process.hrtime reads too: not before the HUP, not after now.
          assert.ok(monotonic >= before && monotonic <= process.hrtime.bigint() / 1000n, `MONOTONIC_USEC=${monotonic}`);
          await notify.nth('READY=1', 2);
          await waitFor('the new workers', () => server.liveWorkers().some((pid) => !oldWorkers.includes(pid)) || undefined);
          assert.match((await fetchText(`http://127.0.0.1:${bound.port}/`)).body, /^pid=\d+/);

          // USR2: the new master serves on systemd's sockets too and claims the service (MAINPID=); the old one
          // stops without STOPPING=1, which would stop the service.
          server.signal('SIGUSR2');
          const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
          assert.match(await notify.nth(`MAINPID=${newMaster}`), /^MAINPID=\d+\nREADY=1\n/);
          assert.ok(server.lines.some((line) => line.includes(`Listening at: http://127.0.0.1:${bound.port} (${newMaster})`)));
          server.signal('SIGTERM');
          assert.equal((await server.waitForExit()).code, 0);
          await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Master has been promoted`));
          assert.match((await fetchText(`http://127.0.0.1:${bound.port}/`)).body, /^pid=\d+/);
          assert.ok(!notify.datagrams.some((datagram) => datagram.includes('STOPPING=1')), 'the old master said STOPPING=1');
          assert.ok(!notify.datagrams.some((datagram) => datagram.includes('WATCHDOG=1')), 'WATCHDOG=1 without WATCHDOG_USEC');

          process.kill(newMaster, 'SIGTERM');
          assert.match(await notify.nth('STOPPING=1'), /^STOPPING=1\nSTATUS=Stopping gracefully$/);
          await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Shutting down: Master`));
          assert.ok(fs.statSync(unixPath).isSocket(), 'a socket from systemd is never unlinked');
        });
      } finally {
        unix.close();
        notify.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('sends WATCHDOG=1 again and again under WATCHDOG_USEC (WatchdogSec=), which its workers do not see', {
      skip: runtime === 'node' && !hasSystemdNotify && 'Node sends sd_notify with systemd-notify, which is not installed here',
    }, async () => {
      const dir = tempDir();
      const notify = new NotifySocket(dir);
      try {
        await notify.ready();
        // 0.4 s: a WATCHDOG=1 every 0.2 s. WATCHDOG_PID is the master's: a shell that execs it sets it, as systemd does.
        const shell = ['sh', '-c', 'export WATCHDOG_PID=$$; exec "$0" "$@"', ...cliCommand(target)];
        const starting = Server.startCommand(shell, ['-b', '127.0.0.1:0', fixture('app.ts')], {
          env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '400000' },
        });
        await withRunningServer(starting, async (server) => {
          await notify.nth('READY=1');
          const pings = notify.datagrams.filter((datagram) => datagram === 'WATCHDOG=1').length;
          await notify.nth('WATCHDOG=1', pings + 3);
          for (const name of ['WATCHDOG_USEC', 'WATCHDOG_PID']) {
            assert.equal((await fetchText(`${server.url}/env/${name}`)).body, '', `a worker sees ${name}`);
          }
        });
      } finally {
        notify.kill();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
