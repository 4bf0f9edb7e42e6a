// WebSocket upgrades on every target, with a real client (undici's WebSocket): echo of 1,000 messages each way
// (text and binary, one over 64 KiB), the upgrade logged once as a 101, a plain request on the same port, an
// upgrade request over the request limits refused, a Hono app with tsgunicorn/hono's upgradeWebSocket (and
// hono/deno's natively on Deno.serve), a message over --ws-max-message closed with 1009, bad frames closed with
// 1002 / 1007 while the worker lives on, a client that does not read cut, and a graceful stop (TERM) that closes
// open WebSockets with 1001. The frame parser on its own below: fragments, control frames, violations.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket } from 'undici';
import { FrameError, FrameParser } from '../src/websocket/frame-parser.ts';
import { fetchText, fixture, Server, TARGETS_AT_ONCE, TEST_TARGETS, withRunningServer } from './helpers.ts';

/** How long a test waits for any one thing a WebSocket should do. */
const STEP_MS = 10000;

/** A client WebSocket with its messages and its close, each awaitable with a bound. */
class Client {
  readonly socket: WebSocket;
  readonly messages: (string | ArrayBuffer)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly opened: Promise<void>;
  private waiter?: () => void;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.binaryType = 'arraybuffer';
    this.opened = bounded('the WebSocket to open', new Promise((resolve, reject) => {
      this.socket.onopen = () => resolve();
      this.socket.onerror = (event) => reject(new Error(`WebSocket error: ${(event as { message?: string }).message ?? ''}`));
    }));
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.onclose = (event) => {
        resolve({ code: event.code, reason: event.reason });
        this.waiter?.();
      };
    });
    this.socket.onmessage = (event) => {
      this.messages.push(event.data as string | ArrayBuffer);
      this.waiter?.();
    };
  }

  static async open(url: string): Promise<Client> {
    const client = new Client(url);
    await client.opened;
    return client;
  }

  /** Waits until `count` messages have arrived (bounded). */
  async received(count: number): Promise<(string | ArrayBuffer)[]> {
    await bounded(`${count} messages (got ${this.messages.length})`, new Promise<void>((resolve) => {
      const check = () => {
        if (this.messages.length >= count) resolve();
      };
      this.waiter = check;
      check();
    }));
    return this.messages;
  }

  /** The close the server sent (bounded). */
  closeCode(): Promise<{ code: number; reason: string }> {
    return bounded('the WebSocket to close', this.closed);
  }
}

function bounded<T>(what: string, promise: Promise<T>, ms = STEP_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const wsUrl = (server: Server, path: string) => server.url.replace(/^http/, 'ws') + path;

/** One masked client frame (RFC 6455 §5.2); `mask: false` sends it unmasked, as no client may. */
function clientFrame(opcode: number, payload: Uint8Array, { fin = true, mask = true } = {}): Buffer {
  const length = payload.byteLength;
  const head = length < 126 ? [length] : [126, length >> 8, length & 0xff];
  const key = crypto.randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => (mask ? byte ^ key[i & 3] : byte)));
  return Buffer.concat([
    Buffer.from([(fin ? 0x80 : 0) | opcode, (mask ? 0x80 : 0) | head[0], ...head.slice(1)]), mask ? key : Buffer.alloc(0), masked,
  ]);
}

/** A masked client frame with a 64-bit length (for payloads over 64 KiB). */
function clientFrame64(opcode: number, payload: Uint8Array, fin = true): Buffer {
  const head = Buffer.alloc(14);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(payload.byteLength), 2);
  const key = crypto.randomBytes(4);
  key.copy(head, 10);
  return Buffer.concat([head, Buffer.from(payload.map((byte, i) => byte ^ key[i & 3]))]);
}

/**
 * Opens a WebSocket by hand, sends `frames` and resolves with the close code of the server's close frame (null
 * when the connection closed without one).
 */
function closeCodeAfter(url: string, frames: Buffer): Promise<number | null> {
  const { hostname, port } = new URL(url);
  return bounded('the server to close after bad frames', new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let received = Buffer.alloc(0);
    let upgraded = false;
    socket.on('connect', () => socket.write(`GET /raw HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!upgraded) {
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        assert.match(received.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
        upgraded = true;
        received = received.subarray(end + 4);
        socket.write(frames);
      }
      // The server's frames are unmasked: a close frame is 0x88, its length, then the code.
      if (received.length >= 4 && received[0] === 0x88) {
        resolve(received.readUInt16BE(2));
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(null));
  }));
}

describe('WebSocket', { concurrency: TARGETS_AT_ONCE }, () => {
  for (const target of TEST_TARGETS) {
    describe(target.name, { concurrency: 1 }, () => {
      it('echoes 1,000 text and binary messages each way, one over 64 KiB; a plain request works on the same port', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', '--access-logfile', '-', fixture('websocket-app.ts')]), async (server) => {
          const client = await Client.open(wsUrl(server, '/echo'));
          const large = crypto.randomBytes(100 * 1024);
          const sent: (string | Buffer)[] = [];
          for (let i = 0; i < 1000; i++) {
            const message = i === 500 ? large : i % 2 === 0 ? `text ${i} ✓` : Buffer.from(`binary ${i}`);
            sent.push(message);
            client.socket.send(message);
          }
          const received = await client.received(1000);
          for (let i = 0; i < 1000; i++) {
            const expected = sent[i];
            if (typeof expected === 'string') assert.equal(received[i], expected, `message ${i}`);
            else assert.deepEqual(Buffer.from(received[i] as ArrayBuffer), expected, `message ${i}`);
          }
          const plain = await fetchText(`${server.url}/`);
          assert.equal(plain.status, 200);
          assert.match(plain.body, /^plain pid=/);
          client.socket.close(1000, 'done');
          assert.equal((await client.closeCode()).code, 1000);
          // The upgrade request is logged once, as a 101, with the client's address (access lines are batched).
          const upgradeLine = /^127\.0\.0\.1 .*"GET \/echo HTTP\/1\.1" 101 /;
          await server.waitForLine(upgradeLine);
          assert.equal(server.matches(upgradeLine).length, 1);
        });
      });

      it('serves a Hono app with tsgunicorn/hono\'s upgradeWebSocket', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', fixture('hono-websocket-app.ts')]), async (server) => {
          const client = await Client.open(wsUrl(server, '/ws'));
          client.socket.send('hi');
          client.socket.send(new Uint8Array([1, 2, 3]));
          const [text, binary] = await client.received(2);
          assert.equal(text, 'hono: hi');
          assert.deepEqual([...new Uint8Array(binary as ArrayBuffer)], [1, 2, 3]);
          assert.match((await fetchText(`${server.url}/`)).body, /^hono pid=/);
          client.socket.close(4000, 'bye');
          await server.waitForLine(/hono onClose code=4000 reason=bye/);
        });
      });

      it('serves hono/deno\'s upgradeWebSocket (Deno.upgradeWebSocket) natively on Deno.serve', {
        skip: target.runtime === 'deno' && target.mode === 'reuse-port' ? false : 'Deno.upgradeWebSocket needs Deno.serve\'s own request (Deno reuse-port only)',
      }, async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', fixture('hono-deno-websocket-app.ts')]), async (server) => {
          const client = await Client.open(wsUrl(server, '/ws'));
          client.socket.send('hi');
          assert.deepEqual(await client.received(1), ['deno: hi']);
          client.socket.close();
        });
      });

      it('closes with 1009 on a message over --ws-max-message, and serves on', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', '--ws-max-message', '1K', fixture('websocket-app.ts')]), async (server) => {
          const client = await Client.open(wsUrl(server, '/echo'));
          client.socket.send('x'.repeat(1024));
          await client.received(1);
          client.socket.send('x'.repeat(1025));
          assert.equal((await client.closeCode()).code, 1009);
          const next = await Client.open(wsUrl(server, '/echo'));
          next.socket.send('still here');
          assert.deepEqual(await next.received(1), ['still here']);
          next.socket.close();
        });
      });

      it('cuts a client that leaves more than --ws-max-message bytes unread, and serves on', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', '--ws-max-message', '1M', fixture('websocket-app.ts')]), async (server) => {
          const { hostname, port } = new URL(server.url);
          // The app sends 400 × 64 KiB as fast as send() takes them; this client reads the 101 and nothing after.
          const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(
            `GET /stream?count=400&size=65536 HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
          socket.once('data', () => socket.pause());
          socket.on('error', () => {});
          try {
            // Bun.serve closes such a connection itself (backpressureLimit), without a log line.
            if (!(target.runtime === 'bun' && target.mode === 'reuse-port')) await server.waitForLine(/left more than 1048576 bytes unread/);
            const next = await Client.open(wsUrl(server, '/echo'));
            next.socket.send('served');
            assert.deepEqual(await next.received(1), ['served']);
            next.socket.close();
          } finally {
            socket.destroy();
          }
        });
      });

      it('refuses an upgrade request over the request limits before the app sees it', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', '--limit-request-fields', '8', fixture('websocket-app.ts')]), async (server) => {
          const { hostname, port } = new URL(server.url);
          const extra = Array.from({ length: 10 }, (_, i) => `X-Extra-${i}: ${i}\r\n`).join('');
          const answer = await bounded('the refusal', new Promise<string>((resolve) => {
            let text = '';
            const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(
              `GET /echo HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}` +
              `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
            socket.on('data', (chunk: Buffer) => {
              text += chunk.toString('latin1');
              if (text.includes('\r\n\r\n')) socket.destroy();
            });
            socket.on('error', () => {});
            socket.on('close', () => resolve(text));
          }));
          assert.match(answer, /^HTTP\/1\.1 431 /);
          await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: /);
        });
      });

      it('closes with 1002 on an unmasked frame or a bad opcode, 1007 on bad UTF-8; the worker lives on', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', fixture('websocket-app.ts')]), async (server) => {
          const [pid] = server.liveWorkers();
          const text = (value: string) => Buffer.from(value);
          // Deno.serve's WebSockets read frames themselves: they take an unmasked frame, and close the connection
          // without a close frame on the other violations (README, "WebSocket").
          const denoServe = target.runtime === 'deno' && target.mode === 'reuse-port';
          const expected = (code: number) => (denoServe ? null : code);
          if (!denoServe) assert.equal(await closeCodeAfter(wsUrl(server, '/raw'), clientFrame(1, text('hi'), { mask: false })), 1002);
          assert.equal(await closeCodeAfter(wsUrl(server, '/raw'), clientFrame(3, text('hi'))), expected(1002));
          assert.equal(await closeCodeAfter(wsUrl(server, '/raw'), clientFrame(9, Buffer.alloc(126))), expected(1002));
          assert.equal(await closeCodeAfter(wsUrl(server, '/raw'), clientFrame(1, Buffer.from([0xc3, 0x28]))), expected(1007));
          assert.deepEqual(server.liveWorkers(), [pid]);
          assert.equal((await fetchText(`${server.url}/`)).status, 200);
        });
      });

      it('closes open WebSockets with 1001 on a graceful stop (TERM)', async () => {
        await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '-w', '1', fixture('websocket-app.ts')]), async (server) => {
          const client = await Client.open(wsUrl(server, '/echo'));
          client.socket.send('before');
          await client.received(1);
          server.signal('SIGTERM');
          assert.equal((await client.closeCode()).code, 1001);
          assert.equal((await server.waitForExit()).code, 0);
        });
      });
    });
  }
});

describe('FrameParser', () => {
  const parse = (bytes: Buffer, maxMessage = 1 << 20) => {
    const events: unknown[] = [];
    const parser = new FrameParser({
      onMessage: (message) => events.push(typeof message === 'string' ? message : [...message]),
      onPing: (payload) => events.push(['ping', payload.toString()]),
      onPong: (payload) => events.push(['pong', payload.toString()]),
      onClose: (code, reason) => events.push(['close', code, reason]),
    }, maxMessage);
    // One byte at a time: every frame boundary falls inside a chunk somewhere.
    for (const byte of bytes) parser.feed(Uint8Array.of(byte));
    return events;
  };
  const codeOf = (run: () => unknown) => {
    try {
      run();
    } catch (error) {
      if (error instanceof FrameError) return error.code;
      throw error;
    }
    return undefined;
  };

  it('joins fragments, answers control frames between them, reads the close code and reason', () => {
    const bytes = Buffer.concat([
      clientFrame(1, Buffer.from('héllo '), { fin: false }),
      clientFrame(9, Buffer.from('p')),
      clientFrame(0, Buffer.from('wörld')),
      clientFrame(2, Buffer.from([1, 2, 3])),
      clientFrame(10, Buffer.from('q')),
      clientFrame(8, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])),
    ]);
    assert.deepEqual(parse(bytes), [['ping', 'p'], 'héllo wörld', [1, 2, 3], ['pong', 'q'], ['close', 1000, 'bye']]);
  });

  it('reads a large frame arriving in many chunks, and a large fragmented message', () => {
    const large = crypto.randomBytes(200 * 1024);
    const frame = clientFrame64(2, large);
    const fragmented = Buffer.concat([clientFrame64(2, large.subarray(0, 100000), false), clientFrame64(0, large.subarray(100000))]);
    for (const bytes of [frame, fragmented]) {
      const got: Buffer[] = [];
      const parser = new FrameParser({ onMessage: (message) => got.push(message as Buffer), onPing() {}, onPong() {}, onClose() {} }, 1 << 20);
      for (let at = 0; at < bytes.length; at += 1000) parser.feed(bytes.subarray(at, at + 1000));
      assert.equal(got.length, 1);
      assert.ok(got[0].equals(large));
      assert.equal(got[0].buffer.byteLength, large.byteLength);
    }
  });

  it('gives a binary message an ArrayBuffer of its own', () => {
    const parser = new FrameParser({
      onMessage: (message) => assert.equal((message as Buffer).buffer.byteLength, 3),
      onPing() {}, onPong() {}, onClose() {},
    }, 100);
    parser.feed(Buffer.concat([clientFrame(2, Buffer.from([1, 2, 3])), clientFrame(2, Buffer.from([4, 5, 6]))]));
  });

  it('refuses what RFC 6455 forbids with the close code it calls for', () => {
    assert.equal(codeOf(() => parse(clientFrame(1, Buffer.from('a'), { mask: false }))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(0, Buffer.from('a')))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(11, Buffer.from('a')))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(9, Buffer.from('a'), { fin: false }))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(9, Buffer.alloc(126)))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(8, Buffer.from([0x03, 0xed])))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(8, Buffer.from([0x03])))), 1002);
    assert.equal(codeOf(() => parse(Buffer.concat([clientFrame(1, Buffer.from('a'), { fin: false }), clientFrame(1, Buffer.from('b'))]))), 1002);
    assert.equal(codeOf(() => parse(clientFrame(1, Buffer.from([0xff])))), 1007);
    assert.equal(codeOf(() => parse(Buffer.concat([clientFrame(2, Buffer.alloc(6), { fin: false }), clientFrame(0, Buffer.alloc(6))]), 10)), 1009);
  });
});
