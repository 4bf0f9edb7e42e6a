// The Duplex that bun-listen hands node:http2 over a Bun socket (src/workers/_bun-socket-duplex.ts), in-process with
// a scripted socket (the Duplex is node:stream's, the same under every runtime): reading stops while the readable
// side is full and starts again once it is read; a write the socket takes in part is finished from its drain event,
// and the next write waits for that; the fields the node:http adapter reads; a close fails a waiting write.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BunByteSocket, BunSocketDuplex } from '../src/workers/_bun-socket-duplex.ts';

/** A Bun socket that takes at most `room` bytes per write and records the calls. */
class ScriptedSocket implements BunByteSocket {
  room = Infinity;
  readonly written: Buffer[] = [];
  readonly calls: string[] = [];

  write(data: Uint8Array): number {
    const taken = Math.min(this.room, data.byteLength);
    this.written.push(Buffer.from(data.subarray(0, taken)));
    return taken;
  }

  end(): void {
    this.calls.push('end');
  }

  terminate(): void {
    this.calls.push('terminate');
  }

  pause(): void {
    this.calls.push('pause');
  }

  resume(): void {
    this.calls.push('resume');
  }
}

const tcpPeer = { transport: 'tcp' as const, hostname: '127.0.0.1', port: 4321 };
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('BunSocketDuplex', () => {
  it('stops reading the socket while its readable side is full, and reads again once it is read', async () => {
    const socket = new ScriptedSocket();
    const duplex = new BunSocketDuplex(socket, tcpPeer, false);
    // Past the high-water mark (16 KiB) push() returns false: the socket is paused once.
    for (let i = 0; i < 3; i++) duplex.onData(Buffer.alloc(10 * 1024, i));
    assert.deepEqual(socket.calls, ['pause']);
    let read = 0;
    duplex.on('data', (chunk: Buffer) => (read += chunk.length));
    await nextTurn();
    assert.equal(read, 30 * 1024);
    assert.deepEqual(socket.calls, ['pause', 'resume']);
  });

  it('finishes a write the socket took in part from its drain event before taking the next one', async () => {
    const socket = new ScriptedSocket();
    const duplex = new BunSocketDuplex(socket, tcpPeer, false);
    socket.room = 3;
    let firstDone = false;
    duplex.write(Buffer.from('abcdefgh'), () => (firstDone = true));
    duplex.write(Buffer.from('ij'));
    await nextTurn();
    assert.equal(Buffer.concat(socket.written).toString(), 'abc');
    assert.equal(firstDone, false);
    assert.notEqual(duplex.stuckSince, undefined);
    socket.room = 2;
    duplex.onDrain();
    assert.equal(Buffer.concat(socket.written).toString(), 'abcde');
    socket.room = Infinity;
    duplex.onDrain();
    await nextTurn();
    assert.equal(firstDone, true);
    assert.equal(duplex.stuckSince, undefined);
    assert.equal(Buffer.concat(socket.written).toString(), 'abcdefghij');
  });

  it('tells the peer and TLS as a net.Socket does, and a unix peer has no address', () => {
    const tcp = new BunSocketDuplex(new ScriptedSocket(), tcpPeer, true);
    assert.equal(tcp.remoteAddress, '127.0.0.1');
    assert.equal(tcp.remotePort, 4321);
    assert.equal(tcp.encrypted, true);
    const unix = new BunSocketDuplex(new ScriptedSocket(), { transport: 'unix', hostname: '', port: 0 }, false);
    assert.equal(unix.remoteAddress, undefined);
    assert.equal(unix.remotePort, undefined);
  });

  it('ends the socket after the last write, and a socket closed under a waiting write fails it without a terminate', async () => {
    const ending = new ScriptedSocket();
    const ended = new BunSocketDuplex(ending, tcpPeer, false);
    ended.end('bye');
    await nextTurn();
    assert.deepEqual(ending.calls, ['end']);

    const closing = new ScriptedSocket();
    const duplex = new BunSocketDuplex(closing, tcpPeer, false);
    closing.room = 0;
    let failure: Error | null | undefined;
    duplex.on('error', () => {});
    duplex.write(Buffer.from('never taken'), (error) => (failure = error));
    await nextTurn();
    duplex.onClose();
    await nextTurn();
    assert.match(String(failure), /closed the connection/);
    assert.equal(duplex.destroyed, true);
    assert.deepEqual(closing.calls, []);
  });
});
