// The npm package as a user gets it: `npm pack`, installed into a new project with a Hono app, then served through
// `npx tsgunicorn`, `bun x --bun tsgunicorn` and `deno run -A npm:tsgunicorn`, built into an executable with
// `npx tsgunicorn build`, and type-checked through its exports. Needs the npm registry (the package's own
// dependencies); run by `npm run test:package` (CI), not by `npm test`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, fetchText, ROOT, Server, tempDir } from '../helpers.ts';

const INSTALL_TIMEOUT_MS = 300_000;
const project = tempDir();
const env = { ...process.env, PATH: `${BIN}${path.delimiter}${process.env.PATH}` };

/** Runs a command in the project to completion, bounded; fails the test with its output otherwise. */
function run(command: string, args: string[], cwd = project, timeout = INSTALL_TIMEOUT_MS): string {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout, killSignal: 'SIGKILL' });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** Writes a source file of the project, one line per entry. */
function writeSource(name: string, lines: string[]): void {
  fs.writeFileSync(path.join(project, name), `${lines.join('\n')}\n`);
}

/** Serves the project's Hono app with 2 workers through `command`, checks a reply, stops it with TERM. */
async function servesTheApp(command: string[]): Promise<void> {
  const server = await Server.startCommand(command, ['-w', '2', '-b', '127.0.0.1:0', 'app.ts'], { cwd: project, workers: 2, env });
  try {
    const reply = await fetchText(`${server.url}/`);
    assert.equal(reply.status, 200);
    assert.match(reply.body, /^hono from the package, pid=\d+$/);
    server.signal('SIGTERM');
    assert.deepEqual(await server.waitForExit(), { code: 0, signal: null });
  } finally {
    await server.kill();
  }
}

describe('the npm package', () => {
  before(() => {
    const tarball = run('npm', ['pack', '--silent', '--pack-destination', project], ROOT).trim().split('\n').at(-1)!;
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // hono from this checkout (no download needed); tsgunicorn's own dependencies come from the registry.
    run('npm', ['install', '--no-audit', '--no-fund', path.join(project, tarball), path.join(ROOT, 'node_modules', 'hono')]);
    writeSource('app.ts', [
      "import { Hono } from 'hono';",
      'const app = new Hono();',
      "app.get('/', (c) => c.text(`hono from the package, pid=${process.pid}`));",
      'export default app;',
    ]);
  });
  after(() => fs.rmSync(project, { recursive: true, force: true }));

  it('serves through npx tsgunicorn (Node)', () => servesTheApp(['npx', '--no-install', 'tsgunicorn']));
  it('serves through bun x --bun tsgunicorn', () => servesTheApp([path.join(BIN, 'bun'), 'x', '--bun', 'tsgunicorn']));
  it('serves through deno run -A npm:tsgunicorn', () => servesTheApp([path.join(BIN, 'deno'), 'run', '-A', 'npm:tsgunicorn']));

  it('builds an executable with npx tsgunicorn build', async () => {
    run('npx', ['--no-install', 'tsgunicorn', 'build', 'app.ts', '-o', 'server', '--target', 'bun']);
    await servesTheApp([path.join(project, 'server')]);
  });

  it("types serve() and defineConfig() through the package's exports", () => {
    writeSource('server.ts', [
      "import { defineConfig, serve, type FetchHandler } from 'tsgunicorn';",
      "const handler: FetchHandler = () => new Response('ok');",
      'export const config = defineConfig({ workers: 2 });',
      'export const start = () => serve({ fetch: handler, ...config });',
    ]);
    run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--ignoreConfig', '--noEmit', '--strict',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--types', 'node',
      '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--lib', 'ES2023,DOM', 'server.ts']);
  });
});
