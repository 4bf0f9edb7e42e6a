// Timeouts and backpressure on every target: --request-timeout answers 503 and aborts the handler's signal,
// --write-timeout cuts a client that reads nothing, a client that pipelines requests without reading the answers
// does not get them all answered, and --worker-connections refuses a connection past the cap with 503.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { describeEachTarget, fetchText, fixture, pidOf, Server, servesNatively, sleep, type TestTarget, waitFor, withRunningServer } from './helpers.ts';

const APP = fixture('timeouts-app.ts');

/** A raw client connection that collects what it receives and whether the server closed it. */
class RawClient {
  readonly socket: net.Socket;
  /** The first 64 KiB received. */
  text = '';
  received = 0;
  closed = false;

  /** `read: false`: the client reads nothing until `socket.resume()`. */
  constructor(url: string, { read = true } = {}) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect({ host: hostname, port: Number(port) });
    this.socket.on('error', () => {});
    this.socket.on('close', () => (this.closed = true));
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.byteLength;
      if (this.text.length < 65536) this.text += chunk.toString('latin1');
    });
    if (!read) this.socket.pause();
  }

  /** Sends a GET on this connection. */
  get(path: string): void {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  }

  /** Waits until the received text matches `pattern` (bounded). */
  waitFor(pattern: RegExp, timeoutMs = 10000): Promise<RegExpExecArray> {
    return waitFor(`a response matching ${pattern}, got ${JSON.stringify(this.text.slice(0, 200))}`, () => pattern.exec(this.text) ?? undefined, timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The counts the fixture reports. */
async function counts(url: string): Promise<{ seen: number; aborted: number; pid: number }> {
  const reply = await fetchText(`${url}/count`);
  const [, seen, aborted] = /seen=(\d+) aborted=(\d+)/.exec(reply.body)!;
  return { seen: Number(seen), aborted: Number(aborted), pid: pidOf(reply) };
}

/** Polls an async `check` every 100 ms until it returns a value other than undefined (at most `timeoutMs`). */
async function poll<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Skips Deno.serve and Bun.serve (reuse-port on Deno and Bun), which have no such setting. */
const nativeSkips = (target: TestTarget, what: string) => servesNatively(target)
  ? `the native server has no ${what} to set (README, "Runtimes and engines")` : false;

describeEachTarget('timeouts', (target) => {
  describe(`${target.name}: timeouts and backpressure`, () => {
    it('answers a handler past --request-timeout with 503, aborts its signal and serves on', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '--request-timeout', '1', APP]), async (server) => {
        const { pid } = await counts(server.url);
        const reply = await fetchText(`${server.url}/hang`, { timeoutMs: 15000 });
        assert.equal(reply.status, 503);
        assert.ok([reply.headers.connection].flat().includes('close'), String(reply.headers.connection));
        const after = await poll('the aborted signal', async () => {
          const now = await counts(server.url);
          return now.aborted === 1 ? now : undefined;
        });
        assert.deepEqual(after, { seen: 1, aborted: 1, pid });
        assert.equal((await fetchText(`${server.url}/`)).body, 'ok');
        assert.equal(server.matches(/\[ERROR\] Request timeout: GET \S*\/hang not answered within 1 s/).length, 1);
      });
    });

    it('cuts a client that reads nothing of a streamed response past --write-timeout', { skip: nativeSkips(target, 'write timeout') }, async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '--write-timeout', '1', APP]), async (server) => {
        const client = new RawClient(server.url, { read: false });
        client.get('/stream');
        await server.waitForLine(/Write timeout: ip=127\.0\.0\.1 took none of the response for 1 s/, 20000);
        // The client sees the cut once it reads: what the kernel had taken, then the end, not the 256 MiB.
        client.socket.resume();
        await waitFor('the cut connection to end', () => client.closed || undefined);
        assert.ok(client.received < 256 * 1024 * 1024, `${client.received} bytes received`);
        assert.equal((await fetchText(`${server.url}/`)).body, 'ok');
      });
    });

    it('stops reading from a client that pipelines requests and reads no answers', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', APP]), async (server) => {
        const { pid } = await counts(server.url);
        const client = new RawClient(server.url, { read: false });
        // 64 KiB answers: the kernel's buffers take a few dozen; 20,000 requests fill several of the server's reads.
        client.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20000));
        let previous = -1;
        let seen = 0;
        // Until the count stops moving (at most 10 s): the worker keeps answering other clients meanwhile.
        for (let i = 0; i < 20 && seen !== previous; i++) {
          await sleep(500);
          previous = seen;
          ({ seen } = await counts(server.url));
        }
        assert.ok(seen < 20000 / 2, `${seen} of 20000 pipelined requests reached the handler`);
        client.destroy();
        assert.equal((await counts(server.url)).pid, pid);
      });
    });

    it('refuses a connection past --worker-connections with 503 until one closes', { skip: nativeSkips(target, 'connection cap') }, async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '--worker-connections', '2', APP]), async (server) => {
        const first = new RawClient(server.url);
        const second = new RawClient(server.url);
        for (const client of [first, second]) {
          client.get('/');
          await client.waitFor(/^HTTP\/1\.1 200 [^]*\r\n\r\nok$/);
        }
        const third = new RawClient(server.url);
        third.get('/');
        await third.waitFor(/^HTTP\/1\.1 503 [^]*connection: close/i);
        await waitFor('the refused connection to close', () => third.closed || undefined);
        assert.ok(!third.text.includes('200'), third.text);
        first.destroy();
        // The cap counts the connection until the worker has seen it close.
        const served = await poll('a served connection', async () => {
          const reply = await fetchText(`${server.url}/`).catch(() => undefined);
          return reply?.status === 200 ? reply : undefined;
        });
        assert.equal(served.body, 'ok');
        assert.ok(server.matches(/Connection from ip=127\.0\.0\.1 refused: 2 connections already/).length >= 1);
        second.destroy();
      });
    });
  });
});
