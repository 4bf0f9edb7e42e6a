// What every target makes of the app's response, read as raw bytes: HEAD keeps its GET's Content-Length, 204,
// 304 and HEAD carry no body, a string body gets Fetch's Content-Type, header values go out as latin-1 bytes,
// hop-by-hop fields are dropped, Date is always there and Server only with --server-header, and a field
// HTTP/1.1 cannot carry gets the client a 500 (never a split response) while the worker serves on.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { describeEachTarget, fixture, pidOf, runCli, Server, servesNatively, withRunningServer } from './helpers.ts';

/** One response off the wire. */
interface RawResponse {
  status: number;
  /** The fields as sent, names lowercased, values as latin-1 text (one character per byte). */
  fields: [string, string][];
  body: string;
}

/** The worker pid a `pid=N` body names. */
const workerOf = (response: RawResponse) => pidOf({ status: response.status, body: response.body, headers: {} });

const field = (response: RawResponse, name: string) => response.fields.find(([n]) => n === name)?.[1];

/** The responses in `text` (latin-1), as many as are complete; `bodyless[i]` says the i-th has no body. */
function parseResponses(text: string, bodyless: boolean[]): RawResponse[] {
  const responses: RawResponse[] = [];
  let at = 0;
  while (responses.length < bodyless.length) {
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const [statusLine, ...lines] = text.slice(at, headEnd).split('\r\n');
    const fields = lines.map((line): [string, string] => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    const response: RawResponse = { status: Number(statusLine.split(' ')[1]), fields, body: '' };
    at = headEnd + 4;
    if (!bodyless[responses.length]) {
      if (field(response, 'transfer-encoding') === 'chunked') {
        for (;;) {
          const sizeEnd = text.indexOf('\r\n', at);
          if (sizeEnd < 0) return responses;
          const size = parseInt(text.slice(at, sizeEnd), 16);
          if (text.length < sizeEnd + 2 + size + 2) return responses;
          response.body += text.slice(sizeEnd + 2, sizeEnd + 2 + size);
          at = sizeEnd + 2 + size + 2;
          if (size === 0) break;
        }
      } else {
        const length = Number(field(response, 'content-length') ?? 0);
        if (text.length < at + length) break;
        response.body = text.slice(at, at + length);
        at += length;
      }
    }
    responses.push(response);
  }
  return responses;
}

/**
 * Sends `requests` pipelined on one connection and reads one response for each (`bodyless`: HEAD, 204, 304);
 * `rest` is what followed them by the time they were complete. With `awaitClose`, resolves only once the server
 * has closed the connection (bounded).
 */
function pipelined(url: string, requests: string[], bodyless: boolean[], awaitClose = false): Promise<{ responses: RawResponse[]; rest: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let text = '';
    let done = false;
    const finish = () => {
      const responses = parseResponses(text, bodyless);
      if (responses.length < bodyless.length) return false;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const consumed = responses.length;
      resolve({ responses, rest: consumed === 0 ? text : text.slice(lengthOf(text, bodyless)) });
      return true;
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no ${bodyless.length} whole responses${awaitClose ? ' and a close' : ''} within 5 s; received ${JSON.stringify(text)}`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!awaitClose) finish();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (!done && !finish()) {
        clearTimeout(timer);
        reject(new Error(`the connection closed after ${JSON.stringify(text)}`));
      }
    });
    socket.write(requests.map((request) => `${request} HTTP/1.1\r\nHost: test\r\n\r\n`).join(''));
  });
}

/** How many characters of `text` the responses take up. */
function lengthOf(text: string, bodyless: boolean[]): number {
  let at = 0;
  for (const noBody of bodyless) {
    const headEnd = text.indexOf('\r\n\r\n', at) + 4;
    const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(at, headEnd));
    at = headEnd + (noBody || !length ? 0 : Number(length[1]));
  }
  return at;
}

/** One request on its own connection. */
async function one(url: string, request: string, bodyless = false): Promise<RawResponse> {
  return (await pipelined(url, [request], [bodyless])).responses[0];
}

describeEachTarget('responses', (target) => {
  const native = servesNatively(target);
  describe(`${target.name}: responses`, () => {
    it('frames bodyless responses, keeps HEAD\'s Content-Length, sends Fetch\'s Content-Type and latin-1 bytes', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', fixture('responses-app.ts')]), async (server) => {
        // HEAD, 204 and 304 carry no body: the next pipelined response follows their head at once.
        const { responses, rest } = await pipelined(server.url,
          ['HEAD /text', 'GET /no-content', 'GET /not-modified', 'HEAD /declared-stream', 'GET /after'], [true, true, true, true, false]);
        assert.deepEqual(responses.map((r) => r.status), [200, 204, 304, 200, 200]);
        assert.match(responses[4].body, /^pid=\d+$/);
        assert.equal(rest, '');
        assert.equal(field(responses[0], 'content-length'), '5');
        assert.equal(field(responses[3], 'content-length'), '5', 'the app\'s Content-Length of a HEAD response');
        assert.equal(field(responses[1], 'content-length'), undefined);
        // HEAD says what GET would: the Content-Length of a body at hand (Deno.serve sends a Blob chunked).
        for (const path of ['/text', '/bytes', '/blob']) {
          const get = await one(server.url, `GET ${path}`);
          const head = await one(server.url, `HEAD ${path}`, true);
          assert.equal(get.body, 'hello');
          assert.equal(field(head, 'content-length'), field(get, 'content-length'), `HEAD ${path}`);
        }
        for (const response of responses) assert.ok(field(response, 'date'), `Date on ${JSON.stringify(response)}`);

        // Bun.serve sends the charset lowercase; on bun-listen a string body goes out without one: Bun's Response
        // hides it and cannot be told from a bytes body without replacing the global Response (README).
        const bunListen = target.runtime === 'bun' && !native;
        for (const path of ['/text', '/cloned-text']) {
          const text = await one(server.url, `GET ${path}`);
          if (!bunListen) assert.equal(field(text, 'content-type')?.toLowerCase(), 'text/plain;charset=utf-8', path);
          if (!native && !bunListen) assert.equal(field(text, 'content-type'), 'text/plain;charset=UTF-8', path);
          assert.equal(field(text, 'server'), undefined, 'no Server header by default');
        }

        const latin1 = await one(server.url, 'GET /latin1');
        assert.equal(Buffer.from(field(latin1, 'x-latin1')!, 'latin1').toString('hex'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff]).toString('hex'));
      });
    });

    it('drops hop-by-hop fields, closes on the app\'s Connection: close, answers 500 for a field HTTP/1.1 cannot carry', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', fixture('responses-app.ts')]), async (server) => {
        const pid = workerOf(await one(server.url, 'GET /'));
        const hop = await one(server.url, 'GET /hop-by-hop');
        assert.equal(hop.body, 'x');
        for (const name of ['keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']) {
          assert.equal(field(hop, name), undefined, name);
        }
        assert.doesNotMatch(field(hop, 'connection') ?? '', /x-private/);
        assert.equal(field(hop, 'x-kept'), '1');

        // Deno.serve keeps the connection open whatever the response says (README).
        if (!(native && target.runtime === 'deno')) {
          const { responses } = await pipelined(server.url, ['GET /close'], [false], true);
          assert.equal(responses[0].body, 'x');
        }

        for (const path of ['/control-char', '/bad-headers']) {
          const { responses, rest } = await pipelined(server.url, [`GET ${path}`], [false]);
          // A native server sends the fields of its own Headers, never those of a Headers-like stand-in.
          if (path === '/control-char' || !native) assert.equal(responses[0].status, 500, path);
          assert.doesNotMatch(JSON.stringify(responses[0].fields) + rest, /x-injected|x-control|x-split/, path);
        }
        await server.waitForLine(/\[ERROR\] Error handling request GET \S*\/control-char: invalid response header "x-control" from the app: control character 0x01/);
        if (!native) await server.waitForLine(/\[ERROR\] Error handling request GET \S*\/bad-headers: invalid response header "x-split"/);
        assert.equal(server.matches(/\/control-char: invalid response header/).length, 1);
        assert.equal(workerOf(await one(server.url, 'GET /')), pid, 'the same worker serves on');
      });
    });

    it('sends --server-header unless the app set a Server', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', '--server-header', 'edge/2 (\u00e9)', fixture('responses-app.ts')]), async (server) => {
        const { responses } = await pipelined(server.url, ['GET /text', 'HEAD /text', 'GET /own-server'], [false, true, false]);
        assert.equal(field(responses[0], 'server'), 'edge/2 (\u00e9)');
        assert.equal(field(responses[1], 'server'), 'edge/2 (\u00e9)');
        assert.deepEqual(responses[2].fields.filter(([name]) => name === 'server'), [['server', 'app/1']]);
      });
    });
  });
});

describe('--server-header', () => {
  it('refuses a value HTTP/1.1 cannot carry, in one line', async () => {
    const result = await runCli('node', ['--server-header', 'bad\u0001', '--check-config', fixture('responses-app.ts')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /invalid value "bad\\u0001" for --server-header/);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  });
});
