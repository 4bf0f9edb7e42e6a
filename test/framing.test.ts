// Request framing and smuggling defences, and `Expect`, on every target: malformed or ambiguous requests are
// refused with their status and a close and never reach the app; `100 Continue` goes out when the handler first
// reads the body. Native servers (Deno.serve, Bun.serve) parse for themselves: where they answer differently,
// the case says what they do (README, "Runtimes and engines").
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { describeEachTarget, fixture, Server, servesNatively, waitFor, withRunningServer } from './helpers.ts';

/** How long a step may wait for the server (a bound, not an assertion on speed). */
const WAIT_MS = 5000;

/** A connection to the server that collects what comes back. */
class RawClient {
  readonly socket: net.Socket;
  data = '';
  closed = false;
  #waiters: (() => void)[] = [];

  constructor(url: string) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    const wake = () => {
      for (const waiter of this.#waiters.splice(0)) waiter();
    };
    this.socket.on('data', (chunk: Buffer) => {
      this.data += chunk.toString('latin1');
      wake();
    });
    for (const event of ['end', 'close', 'error']) {
      this.socket.on(event, () => {
        this.closed = true;
        wake();
      });
    }
  }

  write(text: string): void {
    this.socket.write(Buffer.from(text, 'latin1'));
  }

  /** Waits until `done()` holds or the server closes, at most WAIT_MS; returns whether `done()` holds. */
  async until(done: () => boolean): Promise<boolean> {
    const deadline = Date.now() + WAIT_MS;
    while (!done() && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return done();
  }

  /** Status codes of the response heads received so far, in order. */
  get statuses(): number[] {
    return [...this.data.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Whether the target serves with a native server, whose parser is the runtime's own. */

/**
 * What a native server does with a case where it differs from the engines tsgunicorn parses for: the statuses it
 * answers with (an empty list: it only closes), or why the case cannot be refused there.
 */
type NativeAnswer = number[] | { served: string };

interface SmugglingCase {
  name: string;
  raw: string;
  /** The status on node:http and bun-listen (tsgunicorn's head rules on llhttp). */
  status: number;
  /** Per native server where it differs; by default the same status. */
  deno?: NativeAnswer;
  bun?: NativeAnswer;
}

const HEAD = 'POST /p HTTP/1.1\r\nHost: a\r\n';
const CASES: SmugglingCase[] = [
  { name: 'Content-Length with Transfer-Encoding', raw: `${HEAD}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'two Content-Lengths', raw: `${HEAD}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, status: 400 },
  { name: 'a signed Content-Length', raw: `${HEAD}Content-Length: +3\r\n\r\nabc`, status: 400 },
  { name: 'a non-numeric Content-Length', raw: `${HEAD}Content-Length: 3x\r\n\r\nabc`, status: 400 },
  { name: 'chunked twice', raw: `${HEAD}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunked not last', raw: `${HEAD}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'an unknown transfer coding', raw: `${HEAD}Transfer-Encoding: gzip\r\n\r\nabc`, status: 501, deno: [400], bun: [400] },
  { name: 'chunked on HTTP/1.0', raw: 'POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, deno: [400], bun: [400] },
  { name: 'a chunk size that is not hex', raw: `${HEAD}Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n`, status: 400, deno: [] },
  { name: 'chunk data longer than its size', raw: `${HEAD}Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n`, status: 400, deno: [] },
  {
    name: 'Host in the trailer section', raw: `${HEAD}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nHost: evil\r\n\r\n`,
    status: 400, deno: { served: 'a Fetch Request has no trailers' }, bun: { served: 'a Fetch Request has no trailers' },
  },
  { name: 'a bare CR in a value', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', status: 400 },
  { name: 'a bare LF in a value', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n', status: 400 },
  { name: 'NUL in a value', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n', status: 400 },
  { name: 'a control in a value', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n', status: 400 },
  { name: 'NUL in a name', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n', status: 400 },
  { name: 'obs-fold', raw: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n', status: 400 },
  { name: 'LF line ends', raw: 'GET / HTTP/1.1\nHost: a\n\n', status: 400, deno: { served: "Deno.serve's parser accepts bare LF" }, bun: [505] },
  { name: 'an unknown HTTP version', raw: 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', status: 400, bun: [505] },
  { name: 'two Hosts', raw: 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', status: 400 },
  { name: 'an expectation other than 100-continue', raw: `${HEAD}Expect: bogus\r\nContent-Length: 3\r\n\r\nabc`, status: 417 },
  { name: 'CONNECT', raw: 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', status: 501 },
];

/** Sends `raw` and waits for the close; the statuses answered, and whether the server closed. */
async function send(url: string, raw: string): Promise<{ statuses: number[]; closed: boolean }> {
  const client = new RawClient(url);
  try {
    client.write(raw);
    await client.until(() => false);
    return { statuses: client.statuses, closed: client.closed };
  } finally {
    client.destroy();
  }
}

describeEachTarget('framing', (target) => {
  describe(`${target.name}: framing, smuggling and Expect`, () => {
    it('refuses malformed and ambiguous requests with their status and a close, never handing them to the app', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', fixture('expect-app.ts')]), async (server) => {
        const results = await Promise.all(CASES.map(async (c) => ({ c, ...(await send(server.url, c.raw)) })));
        const wrong: string[] = [];
        for (const { c, statuses, closed } of results) {
          const native = servesNatively(target) ? c[target.runtime as 'deno' | 'bun'] : undefined;
          if (native && !Array.isArray(native)) {
            console.log(`# ${target.name}: ${c.name}: served (${native.served})`);
            continue;
          }
          const allowed = native ?? [c.status];
          // Deno.serve sends a refusal's `Connection: close` but leaves the connection open after it.
          const ok = (closed || (servesNatively(target) && target.runtime === 'deno')) && (allowed.length === 0 ? statuses.length <= 1 && (statuses[0] ?? 400) === 400
            : statuses.length === 1 && allowed.includes(statuses[0]));
          if (!ok) wrong.push(`${c.name}: ${statuses.join(',') || 'no answer'}${closed ? '' : ', left open'} (expected ${allowed.join('/') || 'a close'})`);
        }
        assert.deepEqual(wrong, []);
        if (!servesNatively(target)) {
          // Every refusal by the engines tsgunicorn parses for is logged once.
          await waitFor('a log line per refusal', () =>
            server.matches(/Invalid request from ip=127\.0\.0\.1: /).length >= CASES.length || undefined);
        }
      });
    });

    it('sends 100 Continue when the handler first reads the body, and not to a handler that refuses unread', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', fixture('expect-app.ts')]), async (server) => {
        const head = (path: string) => `POST ${path} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n`;
        const reader = new RawClient(server.url);
        const refuser = new RawClient(server.url);
        try {
          reader.write(head('/read'));
          assert.ok(await reader.until(() => reader.statuses.includes(100)), `no 100 Continue: ${JSON.stringify(reader.data)}`);
          reader.write('hello');
          assert.ok(await reader.until(() => reader.data.includes('read 5 bytes')), JSON.stringify(reader.data));
          assert.deepEqual(reader.statuses, [100, 200]);

          refuser.write(head('/refuse'));
          assert.ok(await refuser.until(() => refuser.statuses.includes(413)), JSON.stringify(refuser.data));
          // Deno.serve and Bun.serve answer 100 before the handler runs, as Gunicorn does (not configurable).
          assert.deepEqual(refuser.statuses, servesNatively(target) ? [100, 413] : [413]);
        } finally {
          reader.destroy();
          refuser.destroy();
        }
      });
    });
  });
});
