// Integration tests of the access log: the json format and the batched writes, on every target.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent } from 'undici';
import { describeEachTarget, fetchText, fixture, runCli, Server, servesNatively, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];
const REQUESTS = 40;

describeEachTarget('access log', (target) => {
  describe(`${target.name}: access log`, () => {
    // The native servers tell nothing of what they wrote: there `bytes` is the Content-Length the app set (README).
    it('writes one JSON object per request to stdout, every line landing before a graceful stop', async () => {
      const args = [...LOCAL, '--access-logfile', '-', '--access-logformat', 'json', fixture('app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const agent = new Agent({ connections: 8 });
        let bodies: string[];
        try {
          // latin-1 bytes in a header reach the app as the characters U+0080-U+00FF
          const headers = { 'user-agent': 'caf\u00e9 "quoted" \\ agent', referer: 'http://example.test/r' };
          const replies = await Promise.all(Array.from({ length: REQUESTS }, (_, i) => fetchText(`${server.url}/info?n=${i}`, { headers, keepAlive: agent })));
          bodies = replies.map((reply) => reply.body);
        } finally {
          await agent.close();
        }
        // stop at once: lines still pending in the worker must be written before it exits
        server.signal('SIGTERM');
        assert.equal((await server.waitForExit(15000)).code, 0);
        const entries = server.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
        assert.equal(entries.length, REQUESTS);
        assert.deepEqual(entries.map((e) => Number(new URLSearchParams(e.query).get('n'))).sort((a, b) => a - b), [...Array(REQUESTS).keys()]);
        for (const e of entries) {
          if (!servesNatively(target)) assert.equal(e.bytes, Buffer.byteLength(bodies[Number(new URLSearchParams(e.query).get('n'))]));
          assert.equal(e.method, 'GET');
          assert.equal(e.path, '/info');
          assert.equal(e.protocol, 'HTTP/1.1');
          assert.equal(e.status, 200);
          assert.equal(e.remote_addr, '127.0.0.1');
          assert.equal(e.referer, 'http://example.test/r');
          assert.equal(e.user_agent, 'caf\u00e9 "quoted" \\ agent');
          assert.equal(typeof e.bytes, 'number');
          assert.ok(Number.isInteger(e.duration_us) && e.duration_us >= 0);
          assert.ok(Number.isInteger(e.pid) && e.pid > 0);
          assert.ok(!Number.isNaN(Date.parse(e.time)));
        }
      });
    });
  });
});

describe('--access-logformat', () => {
  it('refuses a format with a line break', async () => {
    const result = await runCli('node', ['--check-config', '--access-logformat', '%(s)s\n%(m)s', fixture('app.ts')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /invalid value "%\(s\)s\\n%\(m\)s" for --access-logformat/);
  });
});
