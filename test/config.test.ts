// Unit tests: the settings table, config precedence, value checking, bind parsing, shell splitting.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { formatSettings, parseCommandLine, resolveSettings, shellSplit } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { parseAppSpec } from '../src/app.ts';
import { encodeSockaddr } from '../src/runtime/libc-socket.ts';
import { SETTINGS } from '../src/settings.ts';
import { parseBind } from '../src/address.ts';
import { VERSION } from '../src/version.ts';
import { ROOT, tempDir } from './helpers.ts';

const resolveIn = (cwd: string, argv: string[], env: Record<string, string> = {}) => resolveSettings({ argv, env, cwd });

describe('configuration', () => {
  it('uses the defaults, WEB_CONCURRENCY and PORT', async () => {
    const dir = tempDir();
    try {
      const plain = await resolveIn(dir, ['app.ts']);
      assert.deepEqual(plain.bind, ['127.0.0.1:8000']);
      assert.equal(plain.workers, 1);
      assert.equal(plain.timeout, 30);
      assert.equal(plain.keepAlive, 5);
      assert.equal(plain.backlog, 2048);
      const fromEnv = await resolveIn(dir, ['app.ts'], { WEB_CONCURRENCY: '3', PORT: '9000' });
      assert.equal(fromEnv.workers, 3);
      assert.deepEqual(fromEnv.bind, ['0.0.0.0:9000']);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('layers defaults < config file < TSGUNICORN_CMD_ARGS < command line', async () => {
    const dir = tempDir();
    try {
      fs.writeFileSync(path.join(dir, 'tsgunicorn.config.json'), JSON.stringify({ workers: 2, timeout: 10, keepAlive: 7, app: 'from-file.ts' }));
      const fileOnly = await resolveIn(dir, []);
      assert.equal(fileOnly.workers, 2);
      assert.equal(fileOnly.app, 'from-file.ts');
      assert.equal(fileOnly.config, path.join(dir, 'tsgunicorn.config.json'));
      const layered = await resolveIn(dir, ['-w', '4'], { TSGUNICORN_CMD_ARGS: '--workers 3 --timeout 20 -b "127.0.0.1:9001"' });
      assert.equal(layered.workers, 4, 'CLI beats TSGUNICORN_CMD_ARGS');
      assert.equal(layered.timeout, 20, 'TSGUNICORN_CMD_ARGS beats the file');
      assert.equal(layered.keepAlive, 7, 'the file beats the default');
      assert.deepEqual(layered.bind, ['127.0.0.1:9001']);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('loads a TypeScript config file with -c, and settings passed in code sit above it', async () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'custom.config.ts');
      fs.writeFileSync(file, 'const workers: number = 5;\nexport default { workers, maxRequests: 100 };\n');
      const settings = await resolveSettings({ argv: ['-c', file], env: {}, cwd: ROOT, settings: { maxRequests: 7 } });
      assert.equal(settings.workers, 5);
      assert.equal(settings.maxRequests, 7);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('names the setting and what it accepts when a value is bad', async () => {
    const dir = tempDir();
    try {
      await assert.rejects(resolveIn(dir, ['-w', 'many']), { message: /invalid value "many" for -w\/--workers \(workers\): expected an integer >= 1/ });
      await assert.rejects(resolveIn(dir, ['-w', '0']), ConfigError);
      await assert.rejects(resolveIn(dir, ['--log-level', 'loud']), { message: /--log-level.*one of debug, info, warning, error, critical/ });
      await assert.rejects(resolveIn(dir, ['--timeout=-1']), { message: /--timeout.*>= 0/ });
      await assert.rejects(resolveIn(dir, ['--no-such-flag']), { message: /Unknown option '--no-such-flag'/ });
      await assert.rejects(resolveIn(dir, ['-e', 'NOEQUALS']), { message: /KEY=VALUE/ });
      await assert.rejects(resolveIn(dir, ['a.ts', 'b.ts']), { message: /expected one APP argument/ });
      fs.writeFileSync(path.join(dir, 'tsgunicorn.config.json'), JSON.stringify({ wokers: 2 }));
      await assert.rejects(resolveIn(dir, []), { message: /unknown setting "wokers"/ });
      fs.writeFileSync(path.join(dir, 'tsgunicorn.config.json'), JSON.stringify({ workers: 'two' }));
      await assert.rejects(resolveIn(dir, []), { message: /config file tsgunicorn.config.json: invalid value "two" for -w\/--workers/ });
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('reads --max-worker-memory as bytes or with a K/M/G suffix, and the lifecycle settings', async () => {
    const dir = tempDir();
    try {
      assert.equal((await resolveIn(dir, ['app.ts'])).maxWorkerMemory, 0);
      assert.equal((await resolveIn(dir, ['--max-worker-memory', '512M'])).maxWorkerMemory, 512 * 1024 ** 2);
      assert.equal((await resolveIn(dir, ['--max-worker-memory', '1GiB'])).maxWorkerMemory, 1024 ** 3);
      assert.equal((await resolveIn(dir, ['--max-worker-memory', '1.5k'])).maxWorkerMemory, 1536);
      assert.equal((await resolveIn(dir, ['--max-worker-memory', '4096'])).maxWorkerMemory, 4096);
      await assert.rejects(resolveIn(dir, ['--max-worker-memory', 'lots']), { message: /invalid value "lots" for --max-worker-memory \(maxWorkerMemory\): expected a size in bytes/ });
      await assert.rejects(resolveIn(dir, ['--max-worker-memory', '-1M']), ConfigError);
      await assert.rejects(resolveIn(dir, ['--reload-batch', '0']), { message: /--reload-batch.*>= 1/ });
      await assert.rejects(resolveIn(dir, ['--boot-timeout', 'soon']), { message: /--boot-timeout.*a number >= 0/ });
      fs.writeFileSync(path.join(dir, 'tsgunicorn.config.json'), JSON.stringify({ maxWorkerMemory: 1048576, minUptime: 2, preStopDelay: 3 }));
      const fromFile = await resolveIn(dir, []);
      assert.deepEqual([fromFile.maxWorkerMemory, fromFile.minUptime, fromFile.preStopDelay], [1048576, 2, 3]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('collects repeatable flags and aliases', () => {
    const line = parseCommandLine(['-b', 'a:1', '--bind', 'b:2', '--log-file', 'x.log', '-e', 'A=1', '-e', 'B=2', 'app.ts']);
    assert.deepEqual(line.values.bind, ['a:1', 'b:2']);
    assert.equal(line.values.errorLog, 'x.log');
    assert.deepEqual(line.values.env, ['A=1', 'B=2']);
    assert.equal(line.values.app, 'app.ts');
  });

  it('splits TSGUNICORN_CMD_ARGS like a shell', () => {
    assert.deepEqual(shellSplit(`-w 2  --name 'my app' -e "A=b c" x\\ y`), ['-w', '2', '--name', 'my app', '-e', 'A=b c', 'x y']);
    assert.deepEqual(shellSplit(''), []);
    assert.throws(() => shellSplit('"open'), ConfigError);
  });

  it('prints every setting of the table', async () => {
    const settings = await resolveIn(ROOT, ['-w', '3', 'app.ts']);
    const text = formatSettings(settings);
    for (const spec of SETTINGS) assert.match(text, new RegExp(`^${spec.name} +=`, 'm'));
    assert.match(text, /^workers +\= 3$/m);
  });

  it('keeps VERSION equal to package.json', () => {
    assert.equal(VERSION, JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});

describe('addresses and apps', () => {
  it('parses Gunicorn bind addresses', () => {
    assert.deepEqual(parseBind('127.0.0.1:8080'), { kind: 'tcp', host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseBind('[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
    assert.deepEqual(parseBind('[::1]'), { kind: 'tcp', host: '::1', port: 8000 });
    assert.deepEqual(parseBind('localhost'), { kind: 'tcp', host: 'localhost', port: 8000 });
    assert.deepEqual(parseBind(':5000'), { kind: 'tcp', host: '0.0.0.0', port: 5000 });
    assert.deepEqual(parseBind('tcp://0.0.0.0:80'), { kind: 'tcp', host: '0.0.0.0', port: 80 });
    assert.deepEqual(parseBind('unix:/tmp/app.sock'), { kind: 'unix', path: '/tmp/app.sock' });
    assert.deepEqual(parseBind('unix:///tmp/app.sock'), { kind: 'unix', path: '/tmp/app.sock' });
    assert.deepEqual(parseBind('fd://3'), { kind: 'fd', fd: 3 });
    assert.throws(() => parseBind('127.0.0.1:99999'), /port "99999" is not 0-65535/);
    assert.throws(() => parseBind('fd://x'), /fd must be a number/);
    assert.throws(() => parseBind('::1:80'), /IPv6 addresses as \[ADDRESS\]:PORT/);
  });

  it('encodes socket addresses for libc bind()', () => {
    const v4 = encodeSockaddr({ kind: 'tcp', host: '127.0.0.1', port: 8000, family: 4 });
    assert.deepEqual([...v4.slice(0, 8)], [2, 0, 0x1f, 0x40, 127, 0, 0, 1]);
    const v6 = encodeSockaddr({ kind: 'tcp', host: '::1', port: 80, family: 6 });
    assert.equal(v6.length, 28);
    assert.deepEqual([...v6.slice(0, 4)], [10, 0, 0, 80]);
    assert.equal(v6[23], 1);
    const mapped = encodeSockaddr({ kind: 'tcp', host: '::ffff:10.1.2.3', port: 1, family: 6 });
    assert.deepEqual([...mapped.slice(18, 24)], [0xff, 0xff, 10, 1, 2, 3]);
    const unix = encodeSockaddr({ kind: 'unix', path: '/tmp/a.sock' });
    assert.equal(new TextDecoder().decode(unix.slice(2, 13)), '/tmp/a.sock');
  });

  it('splits MODULE:EXPORT app specs', () => {
    assert.deepEqual(parseAppSpec('app.ts'), { file: 'app.ts', exportName: null });
    assert.deepEqual(parseAppSpec('src/server.js:handler'), { file: 'src/server.js', exportName: 'handler' });
    assert.deepEqual(parseAppSpec('C:/x.ts'), { file: 'C:/x.ts', exportName: null });
  });
});
