// Unit tests: the PROXY protocol parser (v1 text, v2 binary) and the verdict on a connection's first bytes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxyHeader, ProxyPreamble } from '../src/http/proxy-protocol.ts';

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

/** A v2 header: command byte, family/protocol byte, address block. */
function v2(command: number, familyProtocol: number, block: number[]): Buffer {
  return Buffer.from([...SIGNATURE, command, familyProtocol, block.length >> 8, block.length & 0xff, ...block]);
}

const IPV4_BLOCK = [192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];
const IPV6_BLOCK = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 2, 0xd4, 0x31, 0x00, 0x50];

describe('PROXY protocol parser', () => {
  it('reads v1 TCP4, TCP6 and UNKNOWN lines', () => {
    const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
    assert.deepEqual(parseProxyHeader(Buffer.from(line + REQUEST), 'v1'),
      { kind: 'header', length: line.length, client: { address: '192.168.0.1', port: 56324 } });
    const six = 'PROXY TCP6 2001:db8::1 2001:db8::2 4242 80\r\n';
    assert.deepEqual(parseProxyHeader(Buffer.from(six), 'auto'),
      { kind: 'header', length: six.length, client: { address: '2001:db8::1', port: 4242 } });
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'), 'auto'), { kind: 'header', length: 15 });
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nGET'), 'v1'), { kind: 'header', length: 35 });
  });

  it('refuses malformed v1 lines (the corpus cases among them)', () => {
    for (const line of ['PROXY TCP4 192.168.0.1 192.16...\r\n', 'PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n',
      'PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n', 'PROXY TCP4 192.168.0.1 192.168.0.11 70000 443\r\n',
      'PROXY TCP6 192.168.0.1 192.168.0.11 1 2\r\n', 'PROXY UDP4 192.168.0.1 192.168.0.11 1 2\r\n',
      'PROXY TCP4  192.168.0.1 192.168.0.11 1 2\r\n', `PROXY TCP4 ${'1'.repeat(120)}`]) {
      assert.equal(parseProxyHeader(Buffer.from(line), 'auto').kind, 'invalid', line);
    }
  });

  it('reads v2 PROXY over IPv4 and IPv6, LOCAL and UNSPEC, skipping TLVs', () => {
    assert.deepEqual(parseProxyHeader(v2(0x21, 0x11, IPV4_BLOCK), 'v2'),
      { kind: 'header', length: 28, client: { address: '192.168.0.1', port: 56324 } });
    assert.deepEqual(parseProxyHeader(v2(0x21, 0x21, IPV6_BLOCK), 'auto'),
      { kind: 'header', length: 52, client: { address: '2001:db8::1', port: 54321 } });
    assert.deepEqual(parseProxyHeader(v2(0x21, 0x11, [...IPV4_BLOCK, 0x04, 0, 1, 0x2a]), 'auto'),
      { kind: 'header', length: 32, client: { address: '192.168.0.1', port: 56324 } });
    assert.deepEqual(parseProxyHeader(v2(0x20, 0x00, []), 'auto'), { kind: 'header', length: 16 });
    assert.deepEqual(parseProxyHeader(v2(0x20, 0x11, IPV4_BLOCK), 'auto'), { kind: 'header', length: 28 });
    assert.deepEqual(parseProxyHeader(v2(0x21, 0x00, []), 'auto'), { kind: 'header', length: 16 });
  });

  it('refuses malformed v2 headers', () => {
    for (const [what, header] of [['version 1', v2(0x11, 0x11, IPV4_BLOCK)], ['command 2', v2(0x22, 0x11, IPV4_BLOCK)],
      ['UDP', v2(0x21, 0x12, IPV4_BLOCK)], ['family 4', v2(0x21, 0x41, IPV4_BLOCK)],
      ['short block', v2(0x21, 0x11, IPV4_BLOCK.slice(0, 8))], ['short IPv6 block', v2(0x21, 0x21, IPV4_BLOCK)]] as const) {
      assert.equal(parseProxyHeader(header, 'auto').kind, 'invalid', what);
    }
  });

  it('waits for more bytes while a header may be starting, and finds none in plain HTTP', () => {
    for (const partial of ['P', 'PROXY', 'PROXY TCP4 192.168.0.1', '\r\n\r\n\0']) {
      assert.equal(parseProxyHeader(Buffer.from(partial, 'latin1'), 'auto').kind, 'incomplete', partial);
    }
    assert.equal(parseProxyHeader(v2(0x21, 0x11, IPV4_BLOCK).subarray(0, 20), 'auto').kind, 'incomplete');
    assert.equal(parseProxyHeader(Buffer.from(REQUEST), 'auto').kind, 'absent');
    assert.equal(parseProxyHeader(Buffer.from('\r\nGET / HTTP/1.1'), 'auto').kind, 'absent');
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n'), 'v2').kind, 'absent');
    assert.equal(parseProxyHeader(v2(0x21, 0x11, IPV4_BLOCK), 'v1').kind, 'absent');
  });
});

describe('PROXY preamble verdicts', () => {
  it('serves the bytes after a header with its client, across chunks', () => {
    const preamble = new ProxyPreamble('auto', true);
    const bytes = Buffer.from(`PROXY TCP4 203.0.113.5 10.0.0.1 4000 80\r\n${REQUEST}`);
    assert.equal(preamble.feed(bytes.subarray(0, 3)), undefined);
    assert.equal(preamble.feed(bytes.subarray(3, 20)), undefined);
    const verdict = preamble.feed(bytes.subarray(20));
    assert.equal(verdict?.action, 'serve');
    assert.deepEqual(verdict.action === 'serve' && verdict.client, { address: '203.0.113.5', port: 4000 });
    assert.equal(verdict.action === 'serve' && Buffer.from(verdict.rest).toString(), REQUEST);
  });

  it('serves plain HTTP from any peer, closes a header from a peer not allowed, refuses a malformed one', () => {
    const plain = new ProxyPreamble('auto', false).feed(Buffer.from(REQUEST));
    assert.equal(plain?.action === 'serve' && Buffer.from(plain.rest).toString(), REQUEST);
    assert.equal(plain?.action === 'serve' && plain.client, undefined);
    assert.equal(new ProxyPreamble('v1', false).feed(Buffer.from('PROXY UNKNOWN\r\n'))?.action, 'close');
    assert.equal(new ProxyPreamble('v1', true).feed(Buffer.from('PROXY TCP4 x y 1 2\r\n'))?.action, 'refuse');
  });
});
