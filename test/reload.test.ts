// --reload (development) under node, deno and bun: a change to the app or to a module it imports replaces the
// workers; an edit that breaks the app keeps the master and the previous workers up until the next save fixes it;
// an app broken from the start waits for its fix; --reload-extra-file reloads too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeEachTarget, fetchText, Server, tempDir, withRunningServer } from './helpers.ts';

const APP = "import { message } from './message.ts';\nexport default { fetch: () => new Response(`${message} pid=${process.pid}`) };\n";
const message = (text: string) => `export const message = ${JSON.stringify(text)};\n`;
const BROKEN = 'export const message = ;\n';

/** A temporary project: app.ts importing message.ts, and an extra file. */
function project(messageSource: string) {
  const dir = tempDir();
  const file = (name: string) => path.join(dir, name);
  fs.writeFileSync(file('app.ts'), APP);
  fs.writeFileSync(file('message.ts'), messageSource);
  fs.writeFileSync(file('extra.txt'), 'one');
  return { dir, file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** waitFor for an async check. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The body the server answers with, once it starts with `expected` (bounded). */
const waitForBody = (server: Server, expected: string) => eventually(`a response starting with ${expected}`, async () => {
  try {
    const reply = await fetchText(`${server.url}/`, { timeoutMs: 2000 });
    return reply.body.startsWith(expected) ? reply.body : undefined;
  } catch {
    return undefined;
  }
}, 30000);

describeEachTarget('reload', (target) => {
  describe(`${target.name}: --reload`, () => {
    it('an edited import replaces the workers; a broken edit keeps the previous workers serving until a fix', async () => {
      const app = project(message('one'));
      try {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '2', '--reload', app.file('app.ts')], { workers: 2 }), async (server) => {
          await server.waitForLine(/Reloading on changes to 2 file\(s\)/);
          assert.match((await fetchText(`${server.url}/`)).body, /^one pid=/);
          fs.writeFileSync(app.file('message.ts'), message('two'));
          await waitForBody(server, 'two');
          await server.waitForLine(/Reload done: 2 workers/, 30000);
          const serving = await server.waitForReady(2);
          fs.writeFileSync(app.file('message.ts'), BROKEN);
          await server.waitForLine(/waiting for a source file to change \(--reload\)/, 30000);
          assert.equal(server.exit, undefined);
          assert.match((await fetchText(`${server.url}/`)).body, /^two pid=/);
          assert.deepEqual(server.liveWorkers().sort(), serving.sort());
          assert.equal(server.matches(/waiting for a source file to change/).length, 1);
          fs.writeFileSync(app.file('message.ts'), message('three'));
          await waitForBody(server, 'three');
        });
      } finally {
        app.remove();
      }
    });

    it('an app broken from the start: the master waits, and the fix brings workers; --reload-extra-file reloads too', async () => {
      const app = project(BROKEN);
      const args = ['-b', '127.0.0.1:0', '--reload', '--reload-extra-file', app.file('extra.txt'), app.file('app.ts')];
      try {
        await withRunningServer(Server.start(target, args, { workers: 0 }), async (server) => {
          await server.waitForLine(/waiting for a source file to change \(--reload\)/, 30000);
          await server.waitForLine(/Reloading on changes to 2 file\(s\) and to the files beside them/);
          assert.equal(server.exit, undefined);
          fs.writeFileSync(app.file('message.ts'), message('fixed'));
          const first = await waitForBody(server, 'fixed');
          fs.writeFileSync(app.file('extra.txt'), 'two');
          await eventually('a new worker', async () => {
            // In reuse-port mode a connection may be reset as the old worker closes its socket (README).
            const reply = await fetchText(`${server.url}/`).catch(() => undefined);
            return reply && reply.body !== first ? reply.body : undefined;
          }, 30000);
          assert.equal(server.exit, undefined);
        });
      } finally {
        app.remove();
      }
    });
  });
});
