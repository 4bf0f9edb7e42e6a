// Integration tests of the access log: the json format and the batched writes, on every target.
import assert from 'node:assert/strict';
import net from 'node:net';
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

    it('logs the request line as received where tsgunicorn parses it: the version, an absolute-form target', async () => {
      const args = [...LOCAL, '--access-logfile', '-', '--access-logformat', 'LINE %(m)s|%(r)s|%(H)s', fixture('app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        await exchangeRaw(server.url, 'GET /v?x=1 HTTP/1.0\r\nHost: example.test\r\n\r\n');
        await exchangeRaw(server.url, 'GET http://example.test/abs?y=2 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n');
        server.signal('SIGTERM');
        assert.equal((await server.waitForExit(15000)).code, 0);
        const logged = server.lines.filter((line) => line.startsWith('LINE '));
        // A native server tells neither the version nor the target as sent (README, "Runtimes and engines").
        assert.deepEqual(logged, servesNatively(target)
          ? ['LINE GET|GET /v?x=1 HTTP/1.1|HTTP/1.1', 'LINE GET|GET /abs?y=2 HTTP/1.1|HTTP/1.1']
          : ['LINE GET|GET /v?x=1 HTTP/1.0|HTTP/1.0', 'LINE GET|GET http://example.test/abs?y=2 HTTP/1.1|HTTP/1.1']);
      });
    });
  });
});

/** Sends `raw` on a new connection and resolves once the server has closed it (both requests here close it). */
function exchangeRaw(url: string, raw: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.end(raw));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 10 s'));
    }, 10_000);
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('--access-logformat', () => {
  it('refuses a format with a line break', async () => {
    const result = await runCli('node', ['--check-config', '--access-logformat', '%(s)s\n%(m)s', fixture('app.ts')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /invalid value "%\(s\)s\\n%\(m\)s" for --access-logformat/);
  });
});
