// Behind a proxy, on every target: forwarding headers from a trusted peer set request.url's scheme and host and
// info.remoteAddr (and the access log's %(h)s); from an untrusted one they reach the app unchanged and mean nothing.
// The PROXY protocol (v1, v2) sets the client address where the engine reads a connection's bytes itself (every
// target but Deno's and Bun's native servers in reuse-port mode, where --proxy-protocol is refused at start).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeEachTarget, fetchText, fixture, runCli, Server, tempDir, type TestTarget, withRunningServer } from './helpers.ts';

interface Seen {
  url: string;
  cloneUrl: string;
  remote: string;
  port: number;
  forwardedFor: string | null;
}

const FORWARDED = {
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'example.com',
  'x-forwarded-for': '203.0.113.7, 127.0.0.1',
};

const REQUEST = 'GET /where?q=1 HTTP/1.1\r\nHost: origin.test\r\n\r\n';
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** A v2 PROXY header for TCP over IPv4 from 198.51.100.4:5000 to 10.0.0.1:443. */
const V2_HEADER = Buffer.from([...V2_SIGNATURE, 0x21, 0x11, 0x00, 0x0c, 198, 51, 100, 4, 10, 0, 0, 1, 0x13, 0x88, 0x01, 0xbb]);

/** The JSON bodies of the complete responses in `text`, and their statuses. */
function responses(text: string): { status: number; seen?: Seen }[] {
  const found: { status: number; seen?: Seen }[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    const length = /\r\ncontent-length: *(\d+)/i.exec(rest.slice(0, end));
    if (end < 0 || !length || rest.length < end + 4 + Number(length[1])) return found;
    const body = rest.slice(end + 4, end + 4 + Number(length[1]));
    const status = Number(rest.split(' ')[1]);
    found.push({ status, seen: status === 200 ? JSON.parse(body) as Seen : undefined });
    rest = rest.slice(end + 4 + Number(length[1]));
  }
}

/**
 * Writes `parts` on one connection, a short pause between them, and resolves with what came back once `expected`
 * responses are complete or the server closed (bounded by 5 s). `closed` tells whether the server closed it.
 */
function converse(url: string, parts: (string | Buffer)[], expected: number): Promise<{ text: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let text = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(finish, 5000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (responses(text).length >= expected) finish();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        await new Promise((next) => setTimeout(next, 50));
      }
    });
  });
}

/** Whether the target's engine reads a connection's bytes itself (not Deno.serve or Bun.serve). */
const readsProxyHeaders = (target: TestTarget) => target.mode === 'inherit' || target.runtime === 'node';

describeEachTarget('proxy', (target) => {
  describe(`${target.name}: behind a proxy`, () => {
    it('follows forwarding headers from a trusted peer, and refuses scheme headers that disagree', async () => {
      const args = ['-b', '127.0.0.1:0', '--access-logfile', '-', '--access-logformat', 'access %(h)s %(U)s', fixture('remote-app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const reply = await fetchText(`${server.url}/where?q=1`, { headers: FORWARDED });
        const seen = JSON.parse(reply.body) as Seen;
        assert.equal(seen.url, 'https://example.com/where?q=1');
        assert.equal(seen.cloneUrl, seen.url);
        assert.equal(seen.remote, '203.0.113.7');
        assert.equal(seen.forwardedFor, FORWARDED['x-forwarded-for']);
        await server.waitForLine(/access 203\.0\.113\.7 \/where/);

        const plain = JSON.parse((await fetchText(`${server.url}/plain`)).body) as Seen;
        assert.equal(plain.url, `${server.url}/plain`);
        assert.equal(plain.remote, '127.0.0.1');

        const conflicting = await fetchText(`${server.url}/x`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-ssl': 'off' } });
        assert.equal(conflicting.status, 400);
        await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: secure scheme headers contradict each other/);
      });
    });

    it('passes forwarding headers from an untrusted peer to the app unchanged, without following them', async () => {
      const args = ['-b', '127.0.0.1:0', '--forwarded-allow-ips', '10.0.0.1', fixture('remote-app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const seen = JSON.parse((await fetchText(`${server.url}/where?q=1`, { headers: FORWARDED })).body) as Seen;
        assert.equal(seen.url, `${server.url}/where?q=1`);
        assert.equal(seen.remote, '127.0.0.1');
        assert.equal(seen.forwardedFor, FORWARDED['x-forwarded-for']);
        const conflicting = await fetchText(`${server.url}/x`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-ssl': 'off' } });
        assert.equal(conflicting.status, 200);
      });
    });

    it('trusts forwarding headers from a unix-socket peer whatever the list', { skip: target.mode === 'reuse-port' && 'unix binds are served by the inherit engine, tested there' }, async () => {
      const dir = tempDir();
      const socketPath = path.join(dir, 'app.sock');
      try {
        const args = ['-b', `unix:${socketPath}`, '--forwarded-allow-ips', '10.0.0.1', fixture('remote-app.ts')];
        await withRunningServer(Server.start(target, args), async () => {
          // 127.0.0.1 is not in the list: the rightmost entry that is not a trusted proxy is the client.
          const seen = JSON.parse((await fetchText('http://localhost/u', { socketPath, headers: FORWARDED })).body) as Seen;
          assert.equal(seen.url, 'https://example.com/u');
          assert.equal(seen.remote, '127.0.0.1');
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reads PROXY v1 and v2 headers from an allowed peer; a malformed one gets 400', { skip: !readsProxyHeaders(target) && 'Deno.serve and Bun.serve parse the bytes themselves' }, async () => {
      const args = ['-b', '127.0.0.1:0', '--proxy-protocol', 'auto', '--access-logfile', '-', '--access-logformat', 'access %(h)s %(U)s',
        fixture('remote-app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        // v1, split inside the header, then a second request on the same connection.
        const v1 = await converse(server.url, ['PROXY TCP4 203.0.113.9 10.0', `.0.1 4444 443\r\n${REQUEST}`, REQUEST], 2);
        const [first, second] = responses(v1.text);
        assert.equal(first?.seen?.remote, '203.0.113.9', v1.text);
        assert.equal(first.seen!.port, 4444);
        assert.equal(first.seen!.url, 'http://origin.test/where?q=1');
        assert.equal(second?.seen?.remote, '203.0.113.9', v1.text);
        await server.waitForLine(/access 203\.0\.113\.9 \/where/);

        const v2 = responses((await converse(server.url, [Buffer.concat([V2_HEADER, Buffer.from(REQUEST)])], 1)).text);
        assert.equal(v2[0]?.seen?.remote, '198.51.100.4');
        const unknown = responses((await converse(server.url, [`PROXY UNKNOWN\r\n${REQUEST}`], 1)).text);
        assert.equal(unknown[0]?.seen?.remote, '127.0.0.1');
        const none = responses((await converse(server.url, [REQUEST], 1)).text);
        assert.equal(none[0]?.seen?.remote, '127.0.0.1');

        // Waits for the close after the answer (a second response never comes).
        const malformed = await converse(server.url, [`PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n${REQUEST}`], 2);
        assert.match(malformed.text, /^HTTP\/1\.1 400 /);
        assert.ok(malformed.closed);
        await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: PROXY line with an address that is not TCP4/);
      });
    });

    it('closes a connection whose PROXY header comes from a peer not allowed, and serves its plain HTTP', { skip: !readsProxyHeaders(target) && 'Deno.serve and Bun.serve parse the bytes themselves' }, async () => {
      const args = ['-b', '127.0.0.1:0', '--proxy-protocol', 'v1', '--proxy-allow-from', '10.0.0.1', fixture('remote-app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const refused = await converse(server.url, [`PROXY TCP4 203.0.113.9 10.0.0.1 4444 443\r\n${REQUEST}`], 1);
        assert.equal(refused.text, '');
        assert.ok(refused.closed);
        await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: PROXY header from a peer not in --proxy-allow-from/);
        const plain = responses((await converse(server.url, [REQUEST], 1)).text);
        assert.equal(plain[0]?.seen?.remote, '127.0.0.1');
      });
    });

    it('closes a connection that never finishes its PROXY header after --header-timeout', { skip: !readsProxyHeaders(target) && 'Deno.serve and Bun.serve parse the bytes themselves' }, async () => {
      const args = ['-b', '127.0.0.1:0', '--proxy-protocol', 'auto', '--header-timeout', '1', fixture('remote-app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const partial = await converse(server.url, ['PROXY TCP4 203.0.113.9'], 1);
        assert.equal(partial.text, '');
        assert.ok(partial.closed, 'still open after 5 s');
      });
    });

    it('refuses --proxy-protocol at start where the native server parses the bytes', { skip: readsProxyHeaders(target) && 'this engine reads PROXY headers' }, async () => {
      const result = await runCli(target, ['-b', '127.0.0.1:0', '--proxy-protocol', 'auto', fixture('remote-app.ts')]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /--proxy-protocol auto: \w+\.serve \(reuse-port mode\) .*use --no-reuse-port/);
    });
  });
});
