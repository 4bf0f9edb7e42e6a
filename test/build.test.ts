// `tsgunicorn build` (an executable with the app bundled in) and dist/tsgunicorn.js (one self-contained file),
// each run from an empty folder, as a user copies them to a server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, fixture, fetchText, ROOT, runCli, runtimeCommand, Server, TARGETS_AT_ONCE, TEST_RUNTIMES, tempDir, waitFor } from './helpers.ts';

const BUILD_TIMEOUT_MS = 120_000;
const withDevTools = { PATH: `${BIN}${path.delimiter}${process.env.PATH}` };
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** An empty temporary folder, removed after the tests. */
function emptyDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

/** Copies `file` alone into a fresh empty folder; returns the copy's path. */
function copyAlone(file: string): string {
  const copy = path.join(emptyDir(), path.basename(file));
  fs.copyFileSync(file, copy);
  fs.chmodSync(copy, 0o755);
  return copy;
}

/**
 * Runs a server with 2 workers from its folder: it serves, `ctl stats` (the same command with `ctl`) lists its
 * workers, HUP replaces both workers, USR2 starts a new master (the same executable or script, run again), TERM
 * makes the old master exit 0 and the new one take over.
 */
async function servesHupsAndStops(command: string[], args: string[], cwd: string): Promise<void> {
  const control = path.join(cwd, 'server.ctl');
  const server = await Server.startCommand(command, ['-w', '2', '-b', '127.0.0.1:0', '--control-socket', control, ...args], { cwd, workers: 2 });
  try {
    const first = server.liveWorkers();
    assert.equal(new Set(first).size, 2);
    await server.waitForLine(/Control socket at /);
    const ctl = spawnSync(command[0], [...command.slice(1), 'ctl', '--socket', control, '--json', 'stats'], { cwd, timeout: 20_000, encoding: 'utf8' });
    assert.equal(ctl.status, 0, ctl.stderr);
    assert.deepEqual(JSON.parse(ctl.stdout).workers.map((w: { pid: number }) => w.pid).sort(), [...first].sort());
    const reply = await fetchText(`${server.url}/`);
    assert.equal(reply.status, 200);
    assert.match(reply.body, /pid=\d+/);
    server.signal('SIGHUP');
    const second = await waitFor('2 new workers', () => {
      const live = server.liveWorkers();
      return live.length === 2 && live.every((pid) => !first.includes(pid)) ? live : undefined;
    });
    assert.equal(new Set(second).size, 2);
    assert.equal((await fetchText(`${server.url}/`)).status, 200);
    server.signal('SIGUSR2');
    const newMaster = Number((await server.waitForLine(/started a new master \(pid:(\d+)\)/))[1]);
    await server.waitForReady(4);
    server.signal('SIGTERM');
    assert.deepEqual(await server.waitForExit(), { code: 0, signal: null });
    await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Master has been promoted`));
    assert.equal((await fetchText(`${server.url}/`)).status, 200);
    process.kill(newMaster, 'SIGTERM');
    await server.waitForLine(new RegExp(`\\[${newMaster}\\] \\[INFO\\] Shutting down: Master`));
  } finally {
    await server.kill();
  }
}

describe('tsgunicorn build', { concurrency: TARGETS_AT_ONCE }, () => {
  for (const target of ['bun', 'node']) {
    it(`--target ${target}: the executable serves the bundled Hono app from an empty folder, HUP, USR2 and TERM work`, async () => {
      const output = path.join(emptyDir(), 'server');
      const build = await runCli('node', ['build', fixture('hono-app.ts'), '-o', output, '--target', target],
        { env: withDevTools, timeoutMs: BUILD_TIMEOUT_MS });
      assert.equal(build.code, 0, build.stderr);
      assert.match(build.stdout, new RegExp(`^Built .*server \\(${target} [\\d.]+, [\\d.]+ MiB\\)`));
      const executable = copyAlone(output);
      await servesHupsAndStops([executable], [], path.dirname(executable));
    });
  }

  it('--target deno without a denort runtime: one line naming DENORT_BIN, exit 1', async () => {
    const output = path.join(emptyDir(), 'server');
    const build = await runCli('node', ['build', fixture('app.ts'), '-o', output, '--target', 'deno'],
      { env: { ...withDevTools, DENORT_BIN: path.join(emptyDir(), 'no-denort') }, timeoutMs: BUILD_TIMEOUT_MS });
    assert.equal(build.code, 1, build.stderr);
    assert.match(build.stderr, /^tsgunicorn build: error: deno compile could not get its denort runtime \(.*\): set DENORT_BIN/);
    assert.equal(build.stderr.trim().split('\n').length, 1, build.stderr);
  });

  it('bad input: one line naming the problem, exit 1', async () => {
    const cases: [string[], RegExp][] = [
      [['build'], /expected one APP, got none/],
      [['build', fixture('app.ts'), '--target', 'jvm'], /invalid value "jvm" for --target/],
      [['build', 'missing-app.ts'], /App module not found: .*missing-app\.ts/],
      [['build', fixture('broken-syntax.js')], /bundling .*broken-syntax\.js failed: .*broken-syntax\.js:1:\d+\)$/m],
      [['build', fixture('app.ts'), '--compile-target', 'bun-linux-arm64', '--target', 'node'], /--compile-target is for --target bun only/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli('node', args, { cwd: emptyDir() });
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  });
});

describe('dist/tsgunicorn.js copied alone into an empty folder', { concurrency: TARGETS_AT_ONCE }, () => {
  for (const runtime of TEST_RUNTIMES) {
    it(`${runtime}: serves a JavaScript app with 2 workers, HUP, USR2 and TERM work`, async () => {
      const script = copyAlone(path.join(ROOT, 'dist', 'tsgunicorn.js'));
      const app = path.join(path.dirname(script), 'app.js');
      fs.writeFileSync(app, 'export default { fetch: () => new Response(`pid=${process.pid}`) };\n');
      await servesHupsAndStops(runtimeCommand(runtime, script), [app], path.dirname(script));
    });
  }
});
