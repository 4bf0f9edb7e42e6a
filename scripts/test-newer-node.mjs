// Runs the Node integration tests again under a newer Node, for what the Node 20 of `npm test` cannot do:
// reuse-port mode (Node >= 22.12) and undici 7's Request. Node comes from the npm registry (the `node` package),
// installed once into node_modules/.cache/newer-node; NEWER_NODE=/path/to/node uses another one instead.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const PACKAGE = 'node@26';
const PREFIX = path.join('node_modules', '.cache', 'newer-node');
const TESTS = ['test/build.test.ts', 'test/upgrade.test.ts', 'test/systemd.test.ts', 'test/limits.test.ts', 'test/server.test.ts', 'test/lifecycle.test.ts', 'test/http1.test.ts', 'test/node-adapter.test.ts', 'test/corpus.test.ts', 'test/framing.test.ts', 'test/proxy.test.ts', 'test/timeouts.test.ts'];

/** The newer Node's path, installed on first use. */
function newerNode() {
  if (process.env.NEWER_NODE) return process.env.NEWER_NODE;
  const bin = path.join(PREFIX, 'node_modules', '.bin', 'node');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(PREFIX, { recursive: true });
    const install = spawnSync('npm', ['install', '--prefix', PREFIX, '--no-save', '--no-audit', '--no-fund', PACKAGE], { stdio: 'inherit' });
    if (install.status !== 0) throw new Error(`npm install ${PACKAGE} failed`);
  }
  return path.resolve(bin);
}

const node = newerNode();
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`# node integration tests under ${version} (${node})`);
const result = spawnSync(node, ['scripts/test.mjs', ...TESTS], {
  stdio: 'inherit',
  env: { ...process.env, TSGUNICORN_TEST_RUNTIMES: 'node' },
});
process.exit(result.status ?? 1);
