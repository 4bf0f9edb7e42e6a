// The node:http → Fetch adapter in-process: a plain http.Server on a random loopback port, no CLI.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AccessEntry, Logger } from '../src/glogging.ts';
import { createRequestListener } from '../src/http/node-fetch-adapter.ts';
import type { FetchHandler } from '../src/http/types.ts';
import { knownBodyOf } from '../src/http/node/known-body.ts';

/** The handler each test installs on the shared server. */
let handler: FetchHandler = () => new Response('unset');
const logged: string[] = [];
const finished: AccessEntry[] = [];
const logger = {
  warning: (message: string) => logged.push(`warning: ${message}`),
  exception: (message: string) => logged.push(`exception: ${message}`),
  accessEnabled: true,
} as unknown as Logger;

let server: http.Server;
let port = 0;

before(async () => {
  const listener = createRequestListener((request, info) => handler(request, info), {
    logger,
    shouldCloseConnection: () => false,
    timed: false,
    onRequestStart: () => {},
    onRequestDone: (entry) => finished.push(entry!),
  });
  server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** One request over a fresh connection; the reply body in full. */
function send(method: string, path: string, options: { headers?: Record<string, string>; body?: Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.end(options.body);
  });
}

/** Resolves after `ms`, or rejects with `what` when `promise` is still pending by then. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const encoder = new TextEncoder();

describe('node:http adapter', () => {
  it('sends the first event of a stream before the second is produced', async () => {
    let releaseSecond!: () => void;
    const secondAllowed = new Promise<void>((resolve) => {
      releaseSecond = resolve;
    });
    handler = () =>
      new Response(
        new ReadableStream({
          async start(controller) {
            controller.enqueue(encoder.encode('data: one\n\n'));
            await secondAllowed;
            controller.enqueue(encoder.encode('data: two\n\n'));
            controller.close();
          },
        }),
        { headers: { 'content-type': 'text/event-stream' } },
      );
    const received = await within(5000, 'the event stream', new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        assert.equal(res.headers['content-length'], undefined);
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text === 'data: one\n\n') releaseSecond();
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      });
      req.on('error', reject);
    }));
    assert.equal(received, 'data: one\n\ndata: two\n\n');
  });

  it('gives bodies that end at once a Content-Length and streams slower ones chunked', async () => {
    handler = (request) => {
      const params = new URL(request.url).searchParams;
      const chunks = params.get('chunks')!.split(',');
      const pauseMs = Number(params.get('pause'));
      return new Response(
        new ReadableStream({
          async pull(controller) {
            if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
            const next = chunks.shift();
            if (next === undefined) controller.close();
            else controller.enqueue(encoder.encode(next));
          },
        }),
      );
    };
    const one = await send('GET', '/?chunks=only&pause=0');
    assert.equal(one.body.toString(), 'only');
    assert.equal(one.headers['content-length'], '4');
    const ready = await send('GET', '/?chunks=a,bb,ccc&pause=0');
    assert.equal(ready.body.toString(), 'abbccc');
    assert.equal(ready.headers['content-length'], '6');
    const slow = await send('GET', '/?chunks=a,bb,ccc&pause=5');
    assert.equal(slow.body.toString(), 'abbccc');
    assert.equal(slow.headers['transfer-encoding'], 'chunked');
    assert.equal(slow.headers['content-length'], undefined);
  });

  it('sets Content-Length for string, bytes and Blob bodies and keeps an explicit one', async () => {
    const bodies: Record<string, () => Response> = {
      '/string': () => new Response('héllo'),
      '/bytes': () => new Response(encoder.encode('bytes!')),
      '/blob': () => new Response(new Blob(['blob', 'parts'])),
      '/explicit': () =>
        new Response(new ReadableStream({ start: (c) => (c.enqueue(encoder.encode('12345')), c.close()) }), { headers: { 'content-length': '5' } }),
      '/empty': () => new Response(null),
    };
    handler = (request) => bodies[new URL(request.url).pathname]();
    const expected: Record<string, [string, string]> = {
      '/string': ['héllo', '6'],
      '/bytes': ['bytes!', '6'],
      '/blob': ['blobparts', '9'],
      '/explicit': ['12345', '5'],
      '/empty': ['', '0'],
    };
    // A Blob's stream ends only after I/O: its length is known where undici shows it (Node 20/22), not in undici 7.
    const blobLengthKnown = knownBodyOf(new Response(new Blob(['x']))) !== undefined;
    for (const [path, [body, length]] of Object.entries(expected)) {
      const reply = await send('GET', path);
      assert.equal(reply.body.toString(), body, path);
      assert.equal(reply.headers['content-length'], path === '/blob' && !blobLengthKnown ? undefined : length, path);
    }
  });

  it('answers HEAD without a body', async () => {
    handler = () => new Response('a body HEAD must not carry');
    const reply = await send('HEAD', '/');
    assert.equal(reply.status, 200);
    assert.equal(reply.body.length, 0);
    const followUp = await send('GET', '/');
    assert.equal(followUp.body.toString(), 'a body HEAD must not carry');
  });

  it('sends no body with 204 and 304', async () => {
    handler = (request) => new Response(null, { status: Number(new URL(request.url).searchParams.get('status')), headers: { etag: '"v1"' } });
    for (const status of [204, 304]) {
      const reply = await send('GET', `/?status=${status}`);
      assert.equal(reply.status, status);
      assert.equal(reply.body.length, 0);
      assert.equal(reply.headers['transfer-encoding'], undefined);
      assert.equal(reply.headers.etag, '"v1"');
    }
  });

  it('sends each Set-Cookie as its own header', async () => {
    handler = () => {
      const headers = new Headers();
      headers.append('set-cookie', 'a=1; Path=/');
      headers.append('set-cookie', 'b=2, still b; HttpOnly');
      return new Response('ok', { headers });
    };
    const reply = await send('GET', '/');
    assert.deepEqual(reply.headers['set-cookie'], ['a=1; Path=/', 'b=2, still b; HttpOnly']);
  });

  it('passes non-ASCII (Latin-1) header values both ways', async () => {
    handler = (request) => new Response(null, { status: 204, headers: { 'x-echo': request.headers.get('x-name')! } });
    const reply = await send('GET', '/', { headers: { 'x-name': 'café' } });
    assert.equal(reply.headers['x-echo'], 'café');
  });

  it('streams a 256 KiB request body into the handler and back', async () => {
    const payload = Buffer.alloc(256 * 1024, 'tsgunicorn ');
    handler = (request) => new Response(request.body, { headers: { 'content-type': request.headers.get('content-type')! } });
    const echoed = await send('POST', '/echo', { body: payload, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(echoed.headers['content-type'], 'application/octet-stream');
    assert.ok(echoed.body.equals(payload));
    handler = async (request) => new Response(await request.arrayBuffer());
    const buffered = await send('POST', '/echo', { body: payload });
    assert.ok(buffered.body.equals(payload));
    assert.equal(buffered.headers['content-length'], String(payload.length));
  });

  it('hands the handler a Request that behaves like a native one', async () => {
    let seen: Record<string, unknown> = {};
    handler = async (request, info) => {
      const copy = request.clone();
      seen = {
        remoteAddr: { ...info }.remoteAddr.hostname,
        isRequest: request instanceof Request,
        url: request.url,
        method: request.method,
        header: request.headers.get('x-test'),
        headersAreHeaders: request.headers instanceof Headers,
        signal: request.signal instanceof AbortSignal,
        text: await request.text(),
        cloneText: await copy.text(),
        cloneIsRequest: copy instanceof Request,
        bodyUsed: request.bodyUsed,
      };
      return new Response('ok');
    };
    await send('PUT', '/path?q=1', { body: Buffer.from('{"a":1}'), headers: { 'x-test': 'yes' } });
    assert.deepEqual(seen, {
      remoteAddr: '127.0.0.1',
      isRequest: true,
      url: `http://127.0.0.1:${port}/path?q=1`,
      method: 'PUT',
      header: 'yes',
      headersAreHeaders: true,
      signal: true,
      text: '{"a":1}',
      cloneText: '{"a":1}',
      cloneIsRequest: true,
      bodyUsed: true,
    });
    handler = async (request) => new Response(JSON.stringify(await request.json()));
    assert.equal((await send('POST', '/', { body: Buffer.from('{"n": 2}') })).body.toString(), '{"n":2}');
    handler = async (request) => {
      const text = await request.text();
      const again = await request.text().then(() => 'read twice', (error: Error) => error.name);
      const clone = (() => {
        try {
          request.clone();
          return 'cloned';
        } catch (error) {
          return (error as Error).name;
        }
      })();
      return Response.json({ text, again, clone, used: request.bodyUsed, streamUsed: request.body?.locked });
    };
    const used = JSON.parse((await send('POST', '/', { body: Buffer.from('\ufeffonce é') })).body.toString());
    assert.deepEqual(used, { text: 'once é', again: 'TypeError', clone: 'TypeError', used: true, streamUsed: true });
    handler = (request) => new Response(String(request.body));
    assert.equal((await send('GET', '/')).body.toString(), 'null');
    assert.equal((await send('DELETE', '/')).body.toString(), 'null');
  });

  it('lets new Request(request) and new Request(url, request) copy method, headers and body', async () => {
    const copies: Array<[string, string, string | null, string]> = [];
    handler = async (request) => {
      const copy = new URL(request.url).pathname === '/whole' ? new Request(request) : new Request('http://elsewhere.test/moved', request);
      copies.push([copy.url, copy.method, copy.headers.get('x-test'), await copy.text()]);
      return new Response('ok');
    };
    await send('POST', '/whole', { body: Buffer.from('first'), headers: { 'x-test': '1' } });
    await send('PATCH', '/init', { body: Buffer.from('second'), headers: { 'x-test': '2' } });
    assert.deepEqual(copies, [
      [`http://127.0.0.1:${port}/whole`, 'POST', '1', 'first'],
      ['http://elsewhere.test/moved', 'PATCH', '2', 'second'],
    ]);
  });

  it('aborts request.signal when the client goes away', async () => {
    let handlerStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      handlerStarted = resolve;
    });
    let aborted!: (reason: unknown) => void;
    const abortSeen = new Promise((resolve) => {
      aborted = resolve;
    });
    handler = (request) =>
      new Promise((resolve) => {
        request.signal.addEventListener('abort', () => {
          aborted(request.signal.reason);
          resolve(new Response('too late'));
        });
        handlerStarted();
      });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await within(5000, 'the handler to start', started);
    socket.destroy();
    const reason = await within(5000, 'the abort', abortSeen);
    assert.equal((reason as Error).name, 'AbortError');
  });

  it('answers 500 when the handler throws, returns no Response or a broken body, 400 for a bad Host', async () => {
    logged.length = 0;
    handler = () => {
      throw new Error('boom');
    };
    const thrown = await send('GET', '/throw');
    assert.equal(thrown.status, 500);
    assert.equal(thrown.body.toString(), 'Internal Server Error\n');
    handler = async () => Promise.reject(new Error('async boom'));
    assert.equal((await send('GET', '/reject')).status, 500);
    handler = () => 'not a response' as unknown as Response;
    assert.equal((await send('GET', '/string')).status, 500);
    handler = () => new Response(new ReadableStream({ start: (controller) => controller.error(new Error('broke')) }), { headers: { 'x-stale': '1' } });
    const broken = await send('GET', '/broken-body');
    assert.equal(broken.status, 500);
    assert.equal(broken.headers['x-stale'], undefined);
    handler = (request) => new Response(request.url);
    assert.equal((await send('GET', '/', { headers: { host: 'bad host' } })).status, 400);
    assert.equal(logged.filter((line) => line.startsWith('exception: Error handling request')).length, 3);
    assert.ok(logged.some((line) => line.startsWith('warning: Invalid request')));
    assert.ok(logged.some((line) => line.startsWith('exception: Error writing response to GET /broken-body')));
  });

  it('reports each finished request with its status and body size', async () => {
    finished.length = 0;
    handler = () => new Response('twelve bytes', { status: 201 });
    await send('GET', '/logged?x=1');
    await within(5000, 'the access entry', (async () => {
      while (finished.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    })());
    const [entry] = finished;
    assert.equal(entry.status, 201);
    assert.equal(entry.bytesSent, 12);
    assert.equal(entry.rawUri, '/logged?x=1');
    assert.equal(entry.responseHeaders.get('Content-Length'), '12');
  });
});
