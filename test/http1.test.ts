// HTTP/1.1 on the wire, on every target: pipelining, streaming responses, Expect: 100-continue, malformed input.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { describeEachTarget, fixture, Server, withRunningServer } from './helpers.ts';

/** A raw connection that collects what the server sends, with the time of its first byte. */
function connect(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  const state = { text: '', firstByteAt: 0, closed: false };
  socket.on('data', (chunk: Buffer) => {
    state.firstByteAt ||= performance.now();
    state.text += chunk.toString('latin1');
  });
  socket.on('close', () => (state.closed = true));
  socket.on('error', () => {});
  const until = async (check: () => boolean, timeoutMs = 5000) => {
    const deadline = performance.now() + timeoutMs;
    while (!check()) {
      if (performance.now() > deadline) throw new Error(`timed out; received so far: ${JSON.stringify(state.text)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return { socket, state, until };
}

describeEachTarget('http1', (target) => {
  describe(`${target.name}: HTTP/1.1 on the wire`, () => {
    it('answers pipelined requests in order, streams SSE at once, honours 100-continue, refuses garbage', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', fixture('wire-app.ts')]), async (server) => {
        const pipelined = connect(server.url);
        pipelined.socket.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        await pipelined.until(() => pipelined.state.closed);
        assert.deepEqual(pipelined.state.text.match(/\/[abc]$|\/[abc](?=HTTP)/gm), ['/a', '/b', '/c']);

        const sse = connect(server.url);
        const sentAt = performance.now();
        sse.socket.write('GET /sse HTTP/1.1\r\nHost: x\r\n\r\n');
        await sse.until(() => sse.state.text.includes('data: 0'));
        assert.ok(sse.state.firstByteAt - sentAt < 800, `first event after ${Math.round(sse.state.firstByteAt - sentAt)} ms`);
        assert.ok(!sse.state.text.includes('data: 1'));
        await sse.until(() => sse.state.text.includes('data: 1'));
        sse.socket.destroy();

        const expect = connect(server.url);
        expect.socket.write('POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
        await expect.until(() => expect.state.text.includes('100 Continue'));
        expect.socket.write('hello');
        await expect.until(() => /\r\n\r\n5$/.test(expect.state.text));
        expect.socket.destroy();

        const garbage = connect(server.url);
        garbage.socket.write('GET / HTTP/1.1\r\nBad Header\r\n\r\n');
        await garbage.until(() => garbage.state.closed);
        assert.match(garbage.state.text, /^HTTP\/1\.1 4\d\d /);
      });
    });
  });
});
