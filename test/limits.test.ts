// Gunicorn's request limits on every target: over-limit requests are refused with 414 / 431 / 413 and
// `Connection: close` before the app sees them (a streamed body: as soon as it passes the limit), and the
// worker lives on. In inherit mode, a request head trickled byte by byte is cut by --header-timeout.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { describeEachTarget, fetchText, fixture, pidOf, Server, withRunningServer } from './helpers.ts';

const LIMITS = ['--limit-request-line', '100', '--limit-request-fields', '10', '--limit-request-field_size', '100',
  '--limit-request-body', '50'];

/** Whether `text` holds a whole response framed by Content-Length. */
function complete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  const length = /\r\ncontent-length: (\d+)/i.exec(text);
  return end >= 0 && length !== null && text.length - end - 4 >= Number(length[1]);
}

/**
 * Sends `head` (and `body`) on a new connection; resolves with the response once it is complete (Deno.serve
 * keeps a connection open whatever the response's Connection header says) or the server closed.
 */
function exchange(url: string, head: string, body = ''): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no whole response within 5 s; received: ${JSON.stringify(text)}`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (complete(text)) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(`${head}\r\n\r\n${body}`);
  });
}

const headers = (count: number) => Array.from({ length: count }, (_, i) => `X-Field-${i}: v`).join('\r\n');
const chunked = (size: number) => `${size.toString(16)}\r\n${'b'.repeat(size)}\r\n0\r\n\r\n`;

describeEachTarget('limits', (target) => {
  describe(`${target.name}: request limits`, () => {
    it('refuses over-limit request lines, fields and bodies before the app, then serves on', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...LIMITS, fixture('counting-app.ts')]), async (server) => {
        const pid = pidOf(await fetchText(`${server.url}/count`));
        const refused: [string, string, string, number][] = [
          ['a 200-byte target', `GET /${'a'.repeat(200)} HTTP/1.1\r\nHost: x`, '', 414],
          ['12 header fields', `GET / HTTP/1.1\r\nHost: x\r\n${headers(11)}`, '', 431],
          ['a 200-byte field', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'v'.repeat(200)}`, '', 431],
          ['a declared 100-byte body', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100', 'b'.repeat(100), 413],
        ];
        for (const [what, head, body, status] of refused) {
          const reply = await exchange(server.url, head, body);
          assert.match(reply, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: ${reply}`);
        }
        assert.equal((await fetchText(`${server.url}/count`)).body, `seen=0 pid=${pid}`);

        // A chunked body reaches the app, which fails to read past the limit: 413.
        const streamed = await exchange(server.url, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked', chunked(100));
        assert.match(streamed, /^HTTP\/1\.1 413 /, streamed);
        // Within the limits, and at them, requests are served.
        const atLimits = await exchange(server.url,
          `POST /${'a'.repeat(100 - 'POST / HTTP/1.1'.length)} HTTP/1.1\r\nHost: x\r\n${headers(7)}\r\nContent-Length: 50\r\nConnection: close`,
          'b'.repeat(50));
        assert.match(atLimits, /^HTTP\/1\.1 200 [^]*got 50 bytes$/, atLimits);
        assert.equal((await fetchText(`${server.url}/count`)).body, `seen=2 pid=${pid}`);
        assert.equal(server.lines.filter((line) => line.includes('Invalid request from ip=127.0.0.1')).length, 5);
      });
    });

    // Deno.serve and Bun.serve have no header timeout to set (README, "Runtimes and engines").
    it('closes a connection that trickles its request head past --header-timeout', { skip: target.mode === 'reuse-port' }, async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '--header-timeout', '1', '--keep-alive', '30', fixture('counting-app.ts')]), async (server) => {
        const { hostname, port } = new URL(server.url);
        const socket = net.connect({ host: hostname, port: Number(port) });
        socket.on('error', () => {});
        const closed = new Promise<boolean>((resolve) => {
          socket.on('close', () => resolve(true));
          setTimeout(() => resolve(false), 10_000);
        });
        const head = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(100)}`;
        let sent = 0;
        const trickle = setInterval(() => {
          if (sent < head.length) socket.write(head[sent++]);
        }, 100);
        try {
          assert.equal(await closed, true, `still open after 10 s with ${sent} bytes sent`);
          assert.ok(sent < head.length);
        } finally {
          clearInterval(trickle);
          socket.destroy();
        }
      });
    });
  });
});
