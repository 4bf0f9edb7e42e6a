// HTTP/2 with prior knowledge (`--http-protocols h1,h2c`), on every target that can serve it: node:http2's client
// sends 100 concurrent streams on one connection, the limits apply to streams as to HTTP/1.1 requests, a peer not
// in --forwarded-allow-ips is refused, TERM sends GOAWAY and lets open streams finish, an idle connection gets GOAWAY
// before its keep-alive close, --write-timeout cuts a client that reads nothing, HTTP/1.1 on the same port goes on,
// curl works too. The targets that cannot (Deno's node:http2, Bun.serve: README, "HTTP/2") are refused at
// start with one line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { describe, it } from 'node:test';
import { describeEachTarget, fetchText, fixture, runCli, Server, type TestTarget, waitFor, withRunningServer } from './helpers.ts';

const APP = fixture('http2-app.ts');
const H2C = ['--http-protocols', 'h1,h2c'];

/** Whether a target serves h2c, and what it tells at start otherwise. */
function h2cSupport(target: TestTarget): { serves: true; native: boolean } | { serves: false; refusal: RegExp } {
  if (target.runtime === 'node') return { serves: true, native: false };
  if (target.runtime === 'deno') {
    return target.mode === 'reuse-port' ? { serves: true, native: true } : { serves: false, refusal: /denoland\/deno#36788/ };
  }
  // Bun.listen: its sockets fed to node:http2; Bun.serve has no HTTP/2 server.
  return target.mode === 'reuse-port' ? { serves: false, refusal: /Bun\.serve has no HTTP\/2 server/ } : { serves: true, native: false };
}

interface StreamReply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** One request on an HTTP/2 session; rejects on a stream error (bounded: 10 s). */
function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<StreamReply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`no answer to ${String(headers[':path'])} within 10 s`));
    }, 10_000);
    let text = '';
    let replyHeaders: http2.IncomingHttpHeaders = {};
    stream.setEncoding('utf8');
    stream.on('response', (received) => (replyHeaders = received));
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ status: Number(replyHeaders[':status']), headers: replyHeaders, body: text });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    stream.end(body);
  });
}

/** Opens an HTTP/2 session with prior knowledge; the caller closes it. */
function connect(url: string): http2.ClientHttp2Session {
  const session = http2.connect(url);
  // A refused or closed session fails its requests, which the tests check.
  session.on('error', () => {});
  return session;
}

/** Writes the connection preface on a raw connection and resolves with what comes back before the close (5 s at most). */
function sendPreface(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let text = '';
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    const timer = setTimeout(finish, 5000);
    socket.on('connect', () => socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

/** An HTTP/2 frame: its 9-byte head and `payload`. */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * Opens a raw connection that asks for `path` by HTTP/2 with the largest flow-control windows (nothing holds the
 * server's writes back but TCP) and then reads nothing: resolves with the socket, paused, once connected.
 */
function requestWithoutReading(url: string, path: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  const largest = 2 ** 31 - 1;
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  settings.writeUInt32BE(largest, 2);
  const increment = Buffer.alloc(4);
  increment.writeUInt32BE(largest - 65_535, 0);
  // HPACK: :method GET, :scheme http (static table), :path and :authority as literals of static-table names.
  const fields = Buffer.concat([Buffer.from([0x82, 0x86, 0x44, path.length]), Buffer.from(path, 'latin1'), Buffer.from([0x41, 1, 0x78])]);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.pause();
      socket.write(Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
        frame(0x4, 0, 0, settings),
        frame(0x8, 0, 0, increment),
        frame(0x1, 0x5, 1, fields), // HEADERS, END_STREAM | END_HEADERS
      ]));
      resolve(socket);
    });
  });
}

/** Runs curl with `args`; resolves with its stdout, or undefined when curl is not installed (bounded: 10 s). */
function curl(args: string[]): Promise<{ code: number | null; stdout: string } | undefined> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-s', '-m', '10', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

describeEachTarget('http2', (target) => {
  const support = h2cSupport(target);
  describe(`HTTP/2 with prior knowledge (${target.name})`, () => {
    if (!support.serves) {
      it('is refused at start with one line', async () => {
        const result = await runCli(target, ['-b', '127.0.0.1:0', ...H2C, APP]);
        assert.equal(result.code, 1);
        assert.match(result.stderr, support.refusal);
      });
      return;
    }

    it('answers 100 concurrent streams on one connection, bodies echoed, and HTTP/1.1 on the same port', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...H2C, '--access-logfile', '-', APP]), async (server) => {
        const session = connect(server.url);
        try {
          const replies = await Promise.all(Array.from({ length: 100 }, (_, i) =>
            request(session, { ':method': 'POST', ':path': `/echo/${i}?q=${i}` }, `body ${i}`)));
          // node-http gives an HTTP/2 request the Host its :authority names; Deno.serve leaves it out.
          const host = support.native ? 'null' : new URL(server.url).host;
          replies.forEach((reply, i) => {
            assert.equal(reply.status, 200);
            assert.equal(reply.body, `POST ${server.url}/echo/${i}?q=${i} host=${host} body=body ${i}`);
            assert.equal(reply.headers['x-app'], 'http2');
            // Connection-specific fields are not HTTP/2's: the app's `Connection: keep-alive` is dropped.
            assert.equal(reply.headers.connection, undefined);
          });
          const streamed = await request(session, { ':path': '/stream' });
          assert.equal(streamed.body.length, 16 * 16 * 1024);
        } finally {
          session.close();
        }
        const h1 = await fetchText(`${server.url}/h1`);
        assert.equal(h1.status, 200);
        assert.match(h1.body, /^GET .*\/h1 /);
        if (!support.native) await server.waitForLine(/"POST \/echo\/99\?q=99 HTTP\/2\.0" 200 /);
      });
    });

    it('works with curl --http2-prior-knowledge', async (t) => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...H2C, APP]), async (server) => {
        const result = await curl(['--http2-prior-knowledge', '-w', ' %{http_version}', '-d', 'from curl', `${server.url}/curl`]);
        if (!result) return t.skip('curl is not installed');
        assert.equal(result.code, 0);
        assert.match(result.stdout, /^POST .*\/curl host=.* body=from curl 2$/);
      });
    });

    it('applies the request limits to streams', async () => {
      const args = ['-b', '127.0.0.1:0', ...H2C, '--limit-request-fields', '10', '--limit-request-field_size', '200',
        '--limit-request-body', '1000', '--http2-max-header-list-size', '1200', APP];
      await withRunningServer(Server.start(target, args), async (server) => {
        const session = connect(server.url);
        try {
          const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-field-${i}`, 'v']));
          assert.equal((await request(session, { ':path': '/many', ...many })).status, 431);
          assert.equal((await request(session, { ':path': '/large', 'x-large': 'v'.repeat(300) })).status, 431);
          // A body past --limit-request-body, declared or not.
          const body = 'b'.repeat(2000);
          assert.equal((await request(session, { ':method': 'POST', ':path': '/declared', 'content-length': '2000' }, body)).status, 413);
          assert.equal((await request(session, { ':method': 'POST', ':path': '/streamed' }, body)).status, 413);
          // Past --http2-max-header-list-size the stream is refused before it reaches the limits (a reset or a 431);
          // Deno.serve's HTTP/2 settings cannot be configured.
          const huge = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`x-huge-${i}`, 'v'.repeat(150)]));
          const refused = await request(session, { ':path': '/huge', ...huge }).then((reply) => reply.status, () => 'reset');
          if (!support.native) assert.ok(refused === 431 || refused === 'reset', `got ${refused}`);
          const fine = await connectAgainIfClosed(session, server.url, { ':path': '/fine' });
          assert.equal(fine.status, 200);
        } finally {
          session.close();
        }
        if (!support.native) await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: 21 header fields \(limit 10\)/);
      });
    });

    it('refuses the preface from a peer not in --forwarded-allow-ips', async (t) => {
      if (support.native) return t.skip('Deno.serve answers h2c on every connection, from any peer (README, "HTTP/2")');
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...H2C, '--forwarded-allow-ips', '10.0.0.1', APP]), async (server) => {
        const answer = await sendPreface(server.url);
        assert.match(answer, /^HTTP\/1\.1 400 /);
        await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: HTTP\/2 connection preface from a peer not in --forwarded-allow-ips/);
        assert.equal((await fetchText(`${server.url}/h1`)).status, 200);
      });
    });

    it('counts each stream as a request for --max-requests: the retiring worker sends GOAWAY', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...H2C, '--max-requests', '5', APP]), async (server) => {
        const session = connect(server.url);
        try {
          const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
          for (let i = 0; i < 5; i++) assert.equal((await request(session, { ':path': `/n${i}` })).status, 200);
          await goaway;
        } finally {
          session.destroy();
        }
        await server.waitForLine(/Autorestarting worker after current request/);
      });
    });

    it('sends GOAWAY before closing a connection idle for --keep-alive', async (t) => {
      // Probed on Deno 2.9.6: an idle HTTP/2 connection was still open 10 s after its last stream, with --keep-alive 1.
      if (support.native) return t.skip('Deno.serve does not close an idle HTTP/2 connection (README, "HTTP/2")');
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...H2C, '--keep-alive', '1', APP]), async (server) => {
        const session = connect(server.url);
        try {
          let goaway: number | undefined;
          let closed = false;
          session.once('goaway', (code: number) => (goaway = code));
          session.once('close', () => (closed = true));
          assert.equal((await request(session, { ':path': '/idle' })).status, 200);
          await waitFor('the idle session to close', () => closed || undefined, 10_000);
          assert.equal(goaway, http2.constants.NGHTTP2_NO_ERROR, 'GOAWAY (NO_ERROR) before the close');
        } finally {
          session.destroy();
        }
      });
    });

    it('cuts a client that reads nothing of a streamed response past --write-timeout', async (t) => {
      if (support.native) return t.skip('Deno.serve has no write timeout (README, "Timeouts")');
      const args = ['-b', '127.0.0.1:0', ...H2C, '--write-timeout', '1', fixture('timeouts-app.ts')];
      await withRunningServer(Server.start(target, args), async (server) => {
        const socket = await requestWithoutReading(server.url, '/stream');
        try {
          await server.waitForLine(/Write timeout: ip=127\.0\.0\.1 took none of the response for 1 s/, 20000);
          let closed = false;
          socket.on('close', () => (closed = true));
          socket.on('error', () => {});
          socket.resume();
          await waitFor('the cut connection to end', () => closed || undefined);
        } finally {
          socket.destroy();
        }
        assert.equal((await fetchText(`${server.url}/`)).status, 200);
      });
    });

    it('sends GOAWAY on TERM and lets the open streams finish', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', ...H2C, '--graceful-timeout', '20', APP]), async (server) => {
        const session = connect(server.url);
        try {
          const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
          // The session is up before the slow streams start.
          assert.equal((await request(session, { ':path': '/first' })).status, 200);
          const slow = Array.from({ length: 3 }, (_, i) => request(session, { ':path': `/slow?ms=2000&i=${i}` }));
          await new Promise((resolve) => setTimeout(resolve, 300));
          server.signal('SIGTERM');
          await goaway;
          for (const reply of await Promise.all(slow)) {
            assert.equal(reply.status, 200);
            assert.match(reply.body, /^GET .*\/slow\?ms=2000&i=\d host=/);
          }
          // No new stream after GOAWAY.
          await assert.rejects(request(session, { ':path': '/late' }));
        } finally {
          session.destroy();
        }
        assert.equal((await server.waitForExit()).code, 0);
      });
    });
  });
});

/** Requests on `session`, or on a new session if the server closed that one (a refused header list may). */
async function connectAgainIfClosed(session: http2.ClientHttp2Session, url: string, headers: http2.OutgoingHttpHeaders): Promise<StreamReply> {
  if (!session.closed && !session.destroyed) return request(session, headers);
  const again = connect(url);
  try {
    return await request(again, headers);
  } finally {
    again.close();
  }
}

describe('--http-protocols', () => {
  it('refuses an unknown protocol with one line', async () => {
    const result = await runCli('node', ['--http-protocols', 'h1,h3', APP]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /invalid value "h1,h3" for --http-protocols: unknown protocol "h3"/);
  });

  it('refuses h2 alone on a plain socket', async () => {
    const result = await runCli('node', ['-b', '127.0.0.1:0', '--http-protocols', 'h2', APP]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /h2 is negotiated over TLS only/);
  });
});
