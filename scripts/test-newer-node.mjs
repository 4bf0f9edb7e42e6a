// Runs the Node integration tests again under a newer Node, for what the Node 20 of `npm test` cannot do:
// reuse-port mode (Node >= 22.12) and undici 7's Request. Node comes from the npm registry (the `node` package),
// installed once into node_modules/.cache/newer-node; NEWER_NODE=/path/to/node uses another one instead.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { NEWER_NODE_BIN, NEWER_NODE_PREFIX } from './_proc-and-runtimes.mjs';

const PACKAGE = 'node@26';
const TESTS = ['test/build.test.ts', 'test/upgrade.test.ts', 'test/systemd.test.ts', 'test/limits.test.ts', 'test/server.test.ts', 'test/lifecycle.test.ts', 'test/http1.test.ts', 'test/node-adapter.test.ts', 'test/corpus.test.ts', 'test/framing.test.ts', 'test/proxy.test.ts', 'test/timeouts.test.ts', 'test/torture.test.ts', 'test/websocket.test.ts', 'test/http2.test.ts', 'test/tls.test.ts'];

/** The newer Node's path, installed on first use. */
function newerNode() {
  if (process.env.NEWER_NODE) return process.env.NEWER_NODE;
  if (!fs.existsSync(NEWER_NODE_BIN)) {
    fs.mkdirSync(NEWER_NODE_PREFIX, { recursive: true });
    const install = spawnSync('npm', ['install', '--prefix', NEWER_NODE_PREFIX, '--no-save', '--no-audit', '--no-fund', PACKAGE], { stdio: 'inherit' });
    if (install.status !== 0) throw new Error(`npm install ${PACKAGE} failed`);
  }
  return NEWER_NODE_BIN;
}

const node = newerNode();
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`# node integration tests under ${version} (${node})`);
const result = spawnSync(node, ['scripts/test.mjs', ...TESTS], {
  stdio: 'inherit',
  env: { ...process.env, TSGUNICORN_TEST_RUNTIMES: 'node' },
});
process.exit(result.status ?? 1);
