// CLI behaviour under node, deno and bun: exit statuses, one-line errors, --print-config, --check-config.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeEachRuntime, fixture, runCli, tempDir } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];

describeEachRuntime('command line', (runtime) => {
  describe(`${runtime}: command line`, () => {
    it('exits 4 ("App failed to load.") when the app throws on import, without a respawn loop', async () => {
      const result = await runCli(runtime, [...LOCAL, '-w', '2', fixture('broken-app.ts')]);
      assert.equal(result.code, 4, result.stderr);
      assert.match(result.stderr, /this app is broken on purpose/);
      assert.match(result.stderr, /Reason: App failed to load\./);
      assert.ok(result.stderr.split('\n').filter((line) => line.includes('Booting worker')).length <= 2);
    });

    it('exits 4 when the module has no Fetch handler or the named export is missing', async () => {
      const noHandler = await runCli(runtime, [...LOCAL, fixture('no-handler.ts')]);
      assert.equal(noHandler.code, 4, noHandler.stderr);
      assert.match(noHandler.stderr, /is not a Fetch handler/);
      const missing = await runCli(runtime, [...LOCAL, `${fixture('app.ts')}:nope`]);
      assert.equal(missing.code, 4, missing.stderr);
      assert.match(missing.stderr, /has no export named "nope"/);
    });

    it('exits 3 ("Worker failed to boot.") when a worker cannot listen, e.g. on an fd that is not a socket', async () => {
      const result = await runCli(runtime, ['-b', 'fd://0', '-w', '2', fixture('app.ts')]);
      assert.equal(result.code, 3, result.stderr);
      assert.match(result.stderr, /Worker could not listen on its sockets/);
      assert.match(result.stderr, /Reason: Worker failed to boot\./);
    });

    it('rejects bad values with one line naming the setting, exit 1', async () => {
      for (const args of [['-w', 'abc', 'app.ts'], ['--keep-alive', 'soon', 'app.ts'], ['-b', '127.0.0.1:70000', 'app.ts'], ['--bogus', 'app.ts']]) {
        const result = await runCli(runtime, args);
        assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
        assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
        assert.match(result.stderr, /^tsgunicorn: error: /);
      }
      const noApp = await runCli(runtime, []);
      assert.equal(noApp.code, 1);
      assert.match(noApp.stderr, /no APP given/);
    });

    it('exits 1 with a clear error when the address is in use', async () => {
      const net = await import('node:net');
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
      try {
        const port = (blocker.address() as { port: number }).port;
        const result = await runCli(runtime, ['-b', `127.0.0.1:${port}`, fixture('app.ts')], { timeoutMs: 30000 });
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, /Connection in use: 127\.0\.0\.1:\d+/);
        assert.match(result.stderr, /Can't connect to 127\.0\.0\.1:\d+/);
      } finally {
        blocker.close();
      }
    });

    it('prints the resolved configuration, with config-file and env precedence', async () => {
      const dir = tempDir();
      try {
        fs.writeFileSync(path.join(dir, 'tsgunicorn.config.ts'), 'export default { workers: 2, timeout: 11, keepAlive: 9 };\n');
        const result = await runCli(runtime, ['--print-config', '-w', '4'], { cwd: dir, env: { TSGUNICORN_CMD_ARGS: '--timeout 12 -w 3' } });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^workers +\= 4$/m);
        assert.match(result.stdout, /^timeout +\= 12$/m);
        assert.match(result.stdout, /^keepAlive +\= 9$/m);
      } finally {
        fs.rmSync(dir, { recursive: true });
      }
    });

    it('--check-config exits 0 for a good app and 1 for a broken one', async () => {
      const good = await runCli(runtime, ['--check-config', fixture('hono-app.ts')]);
      assert.equal(good.code, 0, good.stderr);
      const bad = await runCli(runtime, ['--check-config', fixture('broken-app.ts')]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /broken on purpose/);
    });
  });
});
