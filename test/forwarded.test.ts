// Unit tests: trusted-peer lists (--forwarded-allow-ips, --proxy-allow-from), the proxy settings and the
// forwarding-header rules.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { resolveSettings } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { ForwardedHeaderError, forwardedUrl, ForwardingPolicy } from '../src/http/forwarded.ts';
import { parsePeerList } from '../src/http/trusted-peers.ts';
import { tempDir } from './helpers.ts';

const DEFAULT_SCHEMES = ['X-FORWARDED-PROTOCOL=ssl', 'X-FORWARDED-PROTO=https', 'X-FORWARDED-SSL=on'];

/** A `get` over a plain object of lower-case names, as Headers.get answers. */
const getter = (fields: Record<string, string>) => (name: string) => fields[name] ?? null;

describe('trusted peers', () => {
  it('matches addresses and CIDR networks, IPv4 also in its IPv4-mapped IPv6 form', () => {
    const trusted = parsePeerList('127.0.0.1, ::1,10.0.0.0/8,2001:db8::/32,192.168.1.128/25', '--x');
    for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '10.1.2.3', '::ffff:10.255.0.1', '2001:db8::7',
      '2001:0db8:ffff::1', '192.168.1.200', '0:0:0:0:0:0:0:1']) {
      assert.equal(trusted(address), true, address);
    }
    for (const address of ['127.0.0.2', '::2', '11.0.0.1', '2001:db9::1', '192.168.1.127', '', 'localhost', 'unknown']) {
      assert.equal(trusted(address), false, address);
    }
  });

  it('trusts everyone with *, and nobody outside a single address', () => {
    assert.equal(parsePeerList('*', '--x')('203.0.113.9'), true);
    assert.equal(parsePeerList('10.0.0.1', '--x')('127.0.0.1'), false);
    assert.equal(parsePeerList('0.0.0.0/0', '--x')('198.51.100.1'), true);
    assert.equal(parsePeerList('::/0', '--x')('198.51.100.1'), true);
  });

  it('refuses a bad entry, naming the setting and the entry', () => {
    for (const [list, entry] of [['127.0.0.1,localhost', 'localhost'], ['10.0.0.0/33', '10.0.0.0/33'],
      ['10.0.0.1/8', '10.0.0.1/8'], ['1.2.3', '1.2.3'], ['::1/129', '::1/129'], ['fe80::1%eth0', 'fe80::1%eth0']]) {
      assert.throws(() => parsePeerList(list, '--forwarded-allow-ips'), (error: Error) => error instanceof ConfigError &&
        error.message.includes('--forwarded-allow-ips') && error.message.includes(`"${entry}"`), list);
    }
  });
});

describe('proxy settings', () => {
  it('reads FORWARDED_ALLOW_IPS, repeated --secure-scheme-header, and refuses bad values naming them', async () => {
    const cwd = tempDir();
    const resolve = (argv: string[], env: Record<string, string> = {}) => resolveSettings({ argv: [...argv, 'app.ts'], env, cwd });
    try {
      const defaults = await resolve([]);
      assert.equal(defaults.forwardedAllowIps, '127.0.0.1,::1');
      assert.equal(defaults.proxyProtocol, 'off');
      assert.equal(defaults.proxyAllowIps, '127.0.0.1,::1');
      assert.equal((await resolve([], { FORWARDED_ALLOW_IPS: '10.0.0.0/8,*' })).forwardedAllowIps, '10.0.0.0/8,*');
      const custom = await resolve(['--secure-scheme-header', 'X-Scheme=https', '--secure-scheme-header', 'Front-End-Https=on']);
      assert.deepEqual(custom.secureSchemeHeaders, ['X-Scheme=https', 'Front-End-Https=on']);
      assert.equal((await resolve(['--proxy-protocol', 'V2'])).proxyProtocol, 'v2');
      const refusals: [string[], Record<string, string>, RegExp][] = [
        [['--forwarded-allow-ips', '10.0.0.1/8'], {}, /--forwarded-allow-ips: "10\.0\.0\.1\/8" has host bits set/],
        [[], { FORWARDED_ALLOW_IPS: 'proxy.local' }, /--forwarded-allow-ips: "proxy\.local" is not an IP address/],
        [['--proxy-allow-from', '127.0.0.1,::1,300.1.1.1'], {}, /--proxy-allow-from: "300\.1\.1\.1"/],
        [['--secure-scheme-header', 'X-Forwarded-Proto'], {}, /"X-Forwarded-Proto" for --secure-scheme-header: expected HEADER=VALUE/],
        [['--proxy-protocol', 'v3'], {}, /"v3" for --proxy-protocol/],
      ];
      for (const [argv, env, message] of refusals) await assert.rejects(resolve(argv, env), message, argv.join(' '));
    } finally {
      fs.rmSync(cwd, { recursive: true });
    }
  });
});

describe('forwarding headers', () => {
  const policy = new ForwardingPolicy({ forwardedAllowIps: '127.0.0.1,10.0.0.0/8', secureSchemeHeaders: DEFAULT_SCHEMES });

  it('finds forwarding headers among raw fields and in Headers, and nothing else', () => {
    assert.equal(policy.inRawHeaders(['Host', 'x', 'Accept-Encoding', 'gzip', 'X-Forwarded-For', '1.2.3.4']), true);
    assert.equal(policy.inRawHeaders(['Host', 'x', 'Accept-Encoding', 'gzip', 'x-forwarded-ssl', 'on']), true);
    assert.equal(policy.inRawHeaders(['Host', 'x', 'Accept-Encoding', 'gzip', 'Forwarded', 'for=1.2.3.4']), false);
    assert.equal(policy.inHeaders(new Headers({ 'X-Forwarded-Host': 'a' })), true);
    assert.equal(policy.inHeaders(new Headers({ host: 'a', 'x-forwarded': 'a' })), false);
  });

  it('trusts listed peers and unix-socket peers only', () => {
    assert.equal(policy.trusts({ transport: 'tcp', hostname: '10.9.9.9', port: 1 }), true);
    assert.equal(policy.trusts({ transport: 'tcp', hostname: '192.0.2.1', port: 1 }), false);
    assert.equal(policy.trusts({ transport: 'unix', hostname: '', port: 0 }), true);
  });

  it('reads the scheme from the secure scheme headers, refusing ones that disagree', () => {
    assert.deepEqual(policy.read(getter({ 'x-forwarded-proto': 'https' })), { https: true });
    assert.deepEqual(policy.read(getter({ 'x-forwarded-proto': 'HTTPS', 'x-forwarded-ssl': 'on' })), { https: true });
    assert.deepEqual(policy.read(getter({ 'x-forwarded-proto': 'http' })), {});
    assert.deepEqual(policy.read(getter({ 'x-forwarded-protocol': 'ssl' })), { https: true });
    for (const fields of [{ 'x-forwarded-proto': 'https', 'x-forwarded-ssl': 'off' }, { 'x-forwarded-proto': 'https, http' }] as Record<string, string>[]) {
      assert.throws(() => policy.read(getter(fields)), ForwardedHeaderError, JSON.stringify(fields));
    }
    const custom = new ForwardingPolicy({ forwardedAllowIps: '*', secureSchemeHeaders: ['X-Scheme=secure'] });
    assert.deepEqual(custom.read(getter({ 'x-scheme': 'secure', 'x-forwarded-proto': 'http' })), { https: true });
  });

  it('takes the last X-Forwarded-Host and refuses one that is no host', () => {
    assert.deepEqual(policy.read(getter({ 'x-forwarded-host': 'example.com' })), { host: 'example.com' });
    assert.deepEqual(policy.read(getter({ 'x-forwarded-host': 'a.example, b.example:8443' })), { host: 'b.example:8443' });
    assert.deepEqual(policy.read(getter({ 'x-forwarded-host': '[::1]:80' })), { host: '[::1]:80' });
    for (const host of ['a b', 'a/b', 'a@b', '']) {
      assert.throws(() => policy.read(getter({ 'x-forwarded-host': host })), ForwardedHeaderError, host);
    }
  });

  it('takes the rightmost X-Forwarded-For entry that is not a trusted proxy', () => {
    const client = (xff: string) => policy.read(getter({ 'x-forwarded-for': xff })).client?.hostname;
    assert.equal(client('203.0.113.7'), '203.0.113.7');
    assert.equal(client('198.51.100.1, 203.0.113.7, 10.0.0.2'), '203.0.113.7');
    assert.equal(client('203.0.113.7:5555, 10.0.0.2'), '203.0.113.7');
    assert.equal(client('[2001:db8::1]:443, 10.0.0.2'), '2001:db8::1');
    assert.equal(client('2001:db8::1'), '2001:db8::1');
    assert.equal(client('10.0.0.3, 10.0.0.2'), '10.0.0.3', 'all trusted: the leftmost');
    assert.equal(client('203.0.113.7, unknown'), undefined, 'not an address: the peer stays');
    const everyone = new ForwardingPolicy({ forwardedAllowIps: '*', secureSchemeHeaders: [] });
    assert.equal(everyone.read(getter({ 'x-forwarded-for': '198.51.100.1, 203.0.113.7' })).client?.hostname, '198.51.100.1');
  });

  it('rewrites the scheme and host of a URL, keeping path and query', () => {
    assert.equal(forwardedUrl('http://127.0.0.1:8000/a/b?c=d', { https: true }), 'https://127.0.0.1:8000/a/b?c=d');
    assert.equal(forwardedUrl('http://127.0.0.1:8000/a?c', { host: 'example.com' }), 'http://example.com/a?c');
    assert.equal(forwardedUrl('http://x/', { https: true, host: 'example.com:443' }), 'https://example.com/');
    assert.throws(() => forwardedUrl('http://x/', { host: 'exa%mple' }), ForwardedHeaderError);
  });
});
