// Server hooks under node, deno and bun: each hook runs once in the process Gunicorn runs it in (master hooks in
// the master, worker hooks in the worker, which loads the config file itself), preRequest/postRequest see the
// request and its status, and a hook that throws is logged in one line while the server serves on.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { RequestOutcome } from '../mod.ts';
import { withRequestHooks } from '../src/hooks.ts';
import type { FetchHandler } from '../src/http/types.ts';
import type { Settings } from '../src/settings.ts';
import { describeEachTarget, fetchText, fixture, runCli, Server, tempDir, waitFor, withRunningServer } from './helpers.ts';

const CONFIG = fixture('hooks.config.ts');

/** One line a hook of test/fixtures/hooks.config.ts wrote: its name, the pid it ran in, what it saw. */
interface HookLine {
  name: string;
  pid: number;
  detail: string;
}

/** A temporary hook log and the env that points the fixture config at it. */
function hookLog(throwing: string[] = []): { env: Record<string, string>; lines(): HookLine[]; remove(): void } {
  const dir = tempDir();
  const file = path.join(dir, 'hooks.log');
  return {
    env: { HOOKS_LOG: file, HOOKS_THROW: throwing.join(',') },
    lines: () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').filter(Boolean).map((line) => {
      const [name, pid, ...detail] = line.split(' ');
      return { name, pid: Number(pid), detail: detail.join(' ') };
    }),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** How many times each hook ran. */
function counts(lines: HookLine[]): Record<string, number> {
  const result: Record<string, number> = {};
  for (const { name } of lines) result[name] = (result[name] ?? 0) + 1;
  return result;
}

/** Waits until the hook log holds `count` lines of `name` (bounded). */
const waitForHook = (log: ReturnType<typeof hookLog>, name: string, count = 1) =>
  waitFor(`${count} ${name} hook line(s)`, () => (log.lines().filter((line) => line.name === name).length >= count ? true : undefined));

const MASTER_HOOKS = ['onStarting', 'nworkersChanged', 'whenReady', 'preFork', 'childExit', 'onExit'];
const WORKER_HOOKS = ['postFork', 'postWorkerInit', 'preRequest', 'postRequest', 'workerExit'];

describeEachTarget('hooks', (target) => {
  describe(`${target.name}: server hooks`, () => {
    it('each hook runs once, master hooks in the master and worker hooks in the worker; the request hooks see the request', async () => {
      const log = hookLog();
      try {
        const server = await Server.start(target, ['-b', '127.0.0.1:0', '-c', CONFIG, fixture('app.ts')], { env: log.env });
        let master = 0;
        let worker = 0;
        await withRunningServer(server, async () => {
          master = server.pid;
          [worker] = server.liveWorkers();
          assert.equal((await fetchText(`${server.url}/`)).status, 200);
          await waitForHook(log, 'postRequest');
          server.signal('SIGTERM');
          await server.waitForExit();
        });
        const lines = log.lines();
        const expected = Object.fromEntries([...MASTER_HOOKS, ...WORKER_HOOKS].map((name) => [name, 1]));
        assert.deepEqual(counts(lines), expected, JSON.stringify(lines));
        for (const line of lines) {
          assert.equal(line.pid, MASTER_HOOKS.includes(line.name) ? master : worker, `${line.name} ran in ${line.pid}`);
        }
        const detail = (name: string) => lines.find((line) => line.name === name)!.detail;
        assert.equal(detail('onStarting'), `arbiter=${master}`);
        assert.equal(detail('nworkersChanged'), 'null->1');
        assert.equal(detail('preFork'), 'slot=0');
        assert.equal(detail('postFork'), `arbiter=${master} slot=0`);
        assert.equal(detail('preRequest'), '/');
        assert.equal(detail('postRequest'), '/ 200 true');
        assert.equal(detail('childExit'), `worker=${worker}`);
        const order = lines.map((line) => line.name);
        assert.ok(order.indexOf('whenReady') < order.indexOf('preFork'), `whenReady before the first worker: ${order}`);
        assert.equal(order.at(-1), 'onExit');
      } finally {
        log.remove();
      }
    });

    it('HUP runs onReload, TTIN nworkersChanged, INT to a worker workerInt in it, a failing request postRequest with its 500', async () => {
      const log = hookLog();
      try {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-c', CONFIG, fixture('app.ts')], { env: log.env }), async (server) => {
          assert.equal((await fetchText(`${server.url}/throw`)).status, 500);
          await waitForHook(log, 'postRequest');
          assert.equal(log.lines().find((line) => line.name === 'postRequest')!.detail, '/throw 500 true');
          server.signal('SIGHUP');
          await server.waitForLine(/Reload done: 1 workers/, 30000);
          const reloaded = log.lines().filter((line) => line.name === 'onReload');
          assert.deepEqual(reloaded.map((line) => line.pid), [server.pid]);
          server.signal('SIGTTIN');
          const [first, second] = await server.waitForReady(2);
          assert.deepEqual(log.lines().filter((line) => line.name === 'nworkersChanged').map((line) => line.detail), ['null->1', '1->2']);
          process.kill(first, 'SIGINT');
          await waitForHook(log, 'childExit', 2);
          const interrupted = log.lines().filter((line) => line.name === 'workerInt');
          assert.deepEqual(interrupted.map((line) => line.pid), [first]);
          assert.ok(log.lines().some((line) => line.name === 'childExit' && line.detail === `worker=${first}`));
          assert.ok(!log.lines().some((line) => line.name === 'workerInt' && line.pid === second));
          // INT to the master alone: its quick stop runs workerInt in each worker, once.
          const serving = await server.waitForReady(2);
          server.signal('SIGINT');
          await server.waitForExit();
          const quick = log.lines().filter((line) => line.name === 'workerInt').map((line) => line.pid);
          assert.deepEqual(quick.slice(1).sort(), [...serving].sort());
          assert.deepEqual(log.lines().filter((line) => line.name === 'onExit').map((line) => line.pid), [server.pid]);
        });
      } finally {
        log.remove();
      }
    });

    it('a worker aborted on --timeout runs workerAbort once its loop runs again', async () => {
      const log = hookLog();
      try {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-t', '1', '-c', CONFIG, fixture('app.ts')], { env: log.env }), async (server) => {
          const [worker] = server.liveWorkers();
          // A stopped worker sends no heartbeat; it reads the master's abort once it runs again, within the second
          // the master gives it before SIGKILL. (A handler that blocks the loop for good never lets it.)
          process.kill(worker, 'SIGSTOP');
          await server.waitForLine(new RegExp(`WORKER TIMEOUT \\(pid:${worker}\\)`));
          process.kill(worker, 'SIGCONT');
          await waitForHook(log, 'workerAbort');
          assert.deepEqual(log.lines().filter((line) => line.name === 'workerAbort').map((line) => line.pid), [worker]);
          await server.waitForReady(1);
        });
      } finally {
        log.remove();
      }
    });

    it('USR2 runs preExec in the old master', async () => {
      const log = hookLog();
      try {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-c', CONFIG, fixture('app.ts')], { env: log.env }), async (server) => {
          server.signal('SIGUSR2');
          const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
          await waitForHook(log, 'onStarting', 2);
          assert.deepEqual(log.lines().filter((line) => line.name === 'preExec').map((line) => line.pid), [server.pid]);
          assert.deepEqual(log.lines().filter((line) => line.name === 'onStarting').map((line) => line.pid), [server.pid, newMaster]);
        });
      } finally {
        log.remove();
      }
    });

    it('serve() takes hooks in its options: its workers run them from the code, without a config file', async () => {
      const log = hookLog();
      try {
        await withRunningServer(Server.startScript(target, fixture('serve-hooks-script.ts'), ['-b', '127.0.0.1:0'], { env: log.env }), async (server) => {
          const [worker] = server.liveWorkers();
          assert.equal((await fetchText(`${server.url}/`)).status, 200);
          await waitForHook(log, 'preRequest');
          assert.deepEqual(log.lines().map(({ name, pid }) => `${name} ${pid}`), [
            `onStarting ${server.pid}`, `postWorkerInit ${worker}`, `preRequest ${worker}`,
          ]);
        });
      } finally {
        log.remove();
      }
    });

    it('a hook that throws is logged in one line with its name, and the server serves', async () => {
      const throwing = ['onStarting', 'whenReady', 'preFork', 'postFork', 'postWorkerInit', 'preRequest', 'postRequest'];
      const log = hookLog(throwing);
      try {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-c', CONFIG, fixture('app.ts')], { env: log.env }), async (server) => {
          const reply = await fetchText(`${server.url}/`);
          assert.equal(reply.status, 200);
          assert.match(reply.body, /^pid=\d+/);
          for (const name of throwing) {
            const line = await server.waitForLine(new RegExp(`\\[ERROR\\] Error in hook ${name}: Error: ${name} fails on purpose$`));
            assert.ok(line);
          }
        });
      } finally {
        log.remove();
      }
    });
  });
});

describe('preRequest and postRequest around a handler', () => {
  const info = { remoteAddr: { transport: 'tcp' as const, hostname: '127.0.0.1', port: 1 } };
  const request = new Request('http://localhost/path');
  /** A worker view whose log keeps the error lines; the outcomes postRequest saw. */
  function recorder() {
    const errors: string[] = [];
    const outcomes: RequestOutcome[] = [];
    const log = { debug() {}, info() {}, warning() {}, critical() {}, error: (line: string) => void errors.push(line) };
    const worker = { pid: 1, slot: 0, ppid: 0, settings: {} as Settings, requests: 0, log };
    const postRequest = (_worker: unknown, _request: Request, outcome: RequestOutcome) => void outcomes.push(outcome);
    return { errors, outcomes, worker, postRequest };
  }

  it('leaves the handler as it is when neither is set', () => {
    const handler = () => new Response('hi');
    assert.equal(withRequestHooks(handler, {}, recorder().worker), handler);
  });

  it('gives postRequest the status: the response\'s, 500 for a throw or a non-Response, the error\'s own for a refused body', async () => {
    const { outcomes, worker, postRequest } = recorder();
    const answers: (() => unknown)[] = [
      () => new Response('created', { status: 201 }),
      async () => new Response(null, { status: 204 }),
      () => {
        throw new Error('sync throw');
      },
      async () => {
        throw Object.assign(new Error('too large'), { status: 413 });
      },
      () => 'not a response',
    ];
    for (const answer of answers) {
      const wrapped = withRequestHooks(answer as FetchHandler, { postRequest }, worker);
      try {
        await wrapped(request, info);
      } catch {
        // The engine answers a throw; the hook saw it first.
      }
    }
    assert.deepEqual(outcomes.map((outcome) => outcome.status), [201, 204, 500, 413, 500]);
    assert.ok(outcomes.every((outcome) => outcome.durationMs >= 0));
    assert.equal(outcomes[0].response?.status, 201);
    assert.match(String(outcomes[2].error), /sync throw/);
    assert.equal(outcomes[4].error, 'not a response');
  });

  it('logs a throwing or rejecting request hook in one line and serves the request', async () => {
    const { errors, worker } = recorder();
    const wrapped = withRequestHooks(() => new Response('served'), {
      preRequest: () => {
        throw new Error('pre fails');
      },
      postRequest: async () => {
        throw new Error('post fails');
      },
    }, worker);
    assert.equal(await (await wrapped(request, info)).text(), 'served');
    await waitFor('the rejection logged', () => (errors.length === 2 ? true : undefined));
    assert.deepEqual(errors, ['Error in hook preRequest: Error: pre fails', 'Error in hook postRequest: Error: post fails']);
  });
});

describe('server hooks in the configuration', () => {
  it('--print-config shows a hook as <function>; a hook that is not a function is one error line and exit 1', async () => {
    const printed = await runCli('node', ['-c', CONFIG, '--print-config'], { env: { HOOKS_LOG: '/dev/null' } });
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(printed.stdout, /^onStarting += <function>$/m);
    assert.match(printed.stdout, /^workerInt +: ?= <function>$|^workerInt +=  ?<function>$/m);
    const dir = tempDir();
    try {
      fs.writeFileSync(path.join(dir, 'bad.config.js'), 'export default { preRequest: "log it" };\n');
      const bad = await runCli('node', ['-c', path.join(dir, 'bad.config.js'), fixture('app.ts')]);
      assert.equal(bad.code, 1);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
      assert.match(bad.stderr, /invalid value "log it" for preRequest .*expected a function/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
