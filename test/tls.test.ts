// TLS under node, deno and bun, every engine: https with a certificate the test makes (openssl), request.url
// https, client certificates required and optional where the engine can (else a one-line refusal at start), the
// client certificate shown to the handler, a PROXY header before the handshake, bad certificate files refused at
// start, and a HUP serving renewed certificate files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { fixture, runCli, Server, TARGETS_AT_ONCE, TEST_TARGETS, type TestTarget, tempDir, waitFor, withRunningServer } from './helpers.ts';

const LOCAL = ['-b', '127.0.0.1:0'];

/** The PEM files the tests use, made once with openssl in a temporary folder. */
interface Pems {
  dir: string;
  ca: string;
  /** Server certificates for 127.0.0.1 signed by the CA, CN `one` and `two`, and their keys. */
  oneCert: string;
  oneKey: string;
  twoCert: string;
  twoKey: string;
  /** A client certificate signed by the CA, and one self-signed (not by the CA). */
  clientCert: string;
  clientKey: string;
  strangerCert: string;
  strangerKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 20000 });
}

/** An EC key and a certificate named `name`, signed by the CA (or self-signed), with `extension` lines. */
function makeCertificate(dir: string, name: string, signed: boolean, extension?: string): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`];
  if (!signed) {
    openssl(dir, ['req', '-x509', ...key, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
    return;
  }
  openssl(dir, ['req', ...key, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  const extra = extension ? ['-extfile', `${name}.ext`] : [];
  if (extension) fs.writeFileSync(path.join(dir, `${name}.ext`), `${extension}\n`);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', ...extra]);
}

function makePems(): Pems {
  const dir = tempDir();
  makeCertificate(dir, 'ca', false);
  for (const name of ['one', 'two']) makeCertificate(dir, name, true, 'subjectAltName=IP:127.0.0.1');
  makeCertificate(dir, 'client', true);
  makeCertificate(dir, 'stranger', false);
  const file = (name: string) => path.join(dir, name);
  return {
    dir, ca: file('ca.pem'), oneCert: file('one.pem'), oneKey: file('one.key'), twoCert: file('two.pem'), twoKey: file('two.key'),
    clientCert: file('client.pem'), clientKey: file('client.key'), strangerCert: file('stranger.pem'), strangerKey: file('stranger.key'),
  };
}

/** What one https request got: the status, the body and the CN of the server's certificate. */
interface HttpsReply {
  status: number;
  body: string;
  serverName: string;
}

/** What a test client offers besides the CA it trusts: a certificate, the TLS versions and ciphers it speaks. */
interface ClientOptions {
  cert?: string;
  key?: string;
  maxVersion?: 'TLSv1.2';
  ciphers?: string;
  /** Sent in clear before the handshake, as HAProxy's `send-proxy` does. */
  proxyHeader?: string | Buffer;
  /** Sent as a POST's body (else the request is a GET). */
  body?: Buffer;
  headers?: Record<string, string>;
}

/** An agent whose one TLS connection starts its TCP connection with `header` in clear. */
function proxyingAgent(header: string | Buffer): https.Agent {
  const agent = new https.Agent({ keepAlive: false });
  agent.createConnection = (options: tls.ConnectionOptions) => {
    const tcp = net.connect({ host: options.host!, port: Number(options.port) });
    tcp.write(header);
    return tls.connect({ ...options, socket: tcp });
  };
  return agent;
}

/** One GET (or POST) over a fresh TLS connection, trusting only the test CA, with the client's options (bounded). */
function httpsGet(url: string, ca: string, client: ClientOptions = {}): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, {
      method: client.body ? 'POST' : 'GET',
      headers: client.headers,
      ca: fs.readFileSync(ca),
      agent: client.proxyHeader ? proxyingAgent(client.proxyHeader) : false,
      ...(client.cert && client.key ? { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) } : {}),
      ...(client.maxVersion ? { maxVersion: client.maxVersion } : {}),
      ...(client.ciphers ? { ciphers: client.ciphers } : {}),
    }, (response) => {
      const serverName = String((response.socket as TLSSocket).getPeerCertificate().subject?.CN);
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body, serverName }));
      response.on('error', reject);
    });
    request.setTimeout(10000, () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end(client.body);
  });
}

/** Whether the server closes a connection that sent half a PROXY header and nothing more (waits up to 5 s). */
function closedAfterPartialHeader(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write('PROXY TCP4 203.0.113.9'));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5000);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A v2 PROXY header for TCP over IPv4 from 198.51.100.4:5000 to 10.0.0.1:443. */
const V2_HEADER = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c,
  198, 51, 100, 4, 10, 0, 0, 1, 0x13, 0x88, 0x01, 0xbb]);

/** What test/fixtures/peer-app.ts answers. */
interface Peer {
  url: string;
  remote: { hostname: string; port: number };
  certificate: 'absent' | null | {
    subject: string; issuer: string; serialNumber: string; fingerprint256: string; validTo: string; derBytes: number; pem: string;
  };
}

/** Whether a target reads a PROXY header itself (README, "PROXY protocol"): not the native servers. */
const readsProxyHeaders = (target: TestTarget) => target.mode === 'inherit' || target.runtime === 'node';
/** Whether a target tells the handler of the client certificate (README, "TLS"): not the native servers. */
const showsClientCertificates = (target: TestTarget) => target.mode === 'inherit' || target.runtime === 'node';

/** Whether a target can restrict the ciphers (README, "TLS"): not Deno's servers. */
const restrictsCiphers = (target: TestTarget) => target.runtime !== 'deno';
/** Whether it can refuse TLS 1.2: not Deno.serve. */
const refusesTls12 = (target: TestTarget) => !(target.runtime === 'deno' && target.mode === 'reuse-port');
/** Whether a target can ask for client certificates (README, "TLS"): not Deno's servers. */
const verifiesClientCertificates = (target: TestTarget) => target.runtime !== 'deno';
/** Whether it can also refuse a bad one while serving clients without one: not Bun.serve. */
const verifiesOptionalCertificates = (target: TestTarget) =>
  verifiesClientCertificates(target) && !(target.runtime === 'bun' && target.mode === 'reuse-port');

/**
 * Whether a target serves HTTP/2 by ALPN (README, "HTTP/2"): Node's node:http2, Deno.serve by itself, Bun.listen
 * through node:http2; not Deno's node:http2 (a Deno bug) nor Bun.serve (no HTTP/2 server).
 */
const servesH2 = (target: TestTarget) => target.runtime === 'node' ||
  (target.runtime === 'deno' ? target.mode === 'reuse-port' : target.mode === 'inherit');

/** One GET over HTTP/2 (ALPN h2), trusting the test CA, with the client's certificate: status and body (bounded: 10 s). */
function h2Get(url: string, ca: string, client: ClientOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const certificate = client.cert && client.key ? { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) } : {};
    // With a PROXY header, it goes first in clear on the TCP connection, then the TLS handshake (offering h2).
    const behindHeader = client.proxyHeader && {
      createConnection: () => {
        const { hostname, port } = new URL(url);
        const tcp = net.connect({ host: hostname, port: Number(port) });
        tcp.write(client.proxyHeader!);
        return tls.connect({ socket: tcp, host: hostname, ca: fs.readFileSync(ca), ALPNProtocols: ['h2'], ...certificate });
      },
    };
    const session = http2.connect(url, { ca: fs.readFileSync(ca), ...certificate, ...behindHeader });
    const timer = setTimeout(() => session.destroy(new Error('no HTTP/2 answer in 10 s')), 10000);
    session.on('error', reject);
    const stream = session.request({ ':path': new URL(url).pathname });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('error', reject);
    stream.on('end', () => {
      clearTimeout(timer);
      session.close();
      // A stream the server's close ended before any response (a refused handshake) is a failure.
      if (status === 0) reject(new Error('the stream ended without a response'));
      else resolve({ status, body });
    });
  });
}

describe('TLS', { concurrency: TARGETS_AT_ONCE }, () => {
  let pems: Pems;
  before(() => {
    pems = makePems();
  });
  after(() => fs.rmSync(pems.dir, { recursive: true, force: true }));
  const tlsArgs = () => ['--certfile', pems.oneCert, '--keyfile', pems.oneKey];

  for (const target of TEST_TARGETS) {
    describe(target.name, { concurrency: 1 }, () => {
      it('serves https, and request.url is https', async () => {
        await withRunningServer(Server.start(target, [...LOCAL, ...tlsArgs(), fixture('app.ts')]), async (server) => {
          assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
          const reply = await httpsGet(`${server.url}/info`, pems.ca);
          assert.equal(reply.status, 200);
          assert.equal(reply.serverName, 'one');
          assert.equal(JSON.parse(reply.body).url, `${server.url}/info`);
          const before = (await httpsGet(`${server.url}/`, pems.ca)).body;
          // A plain HTTP client does not get an answer it could read as HTTP, and costs the worker nothing.
          await assert.rejects(fetch(`${server.url.replace('https:', 'http:')}/`, { signal: AbortSignal.timeout(10000) }));
          assert.equal((await httpsGet(`${server.url}/`, pems.ca)).body, before);
          assert.equal(server.matches(/TLS handshake failed/).length <= 1, true, 'one debug line at most');
        });
      });

      it('--http-protocols h1,h2 serves HTTP/2 by ALPN beside HTTP/1.1, or is refused at start with one line', async () => {
        const args = [...LOCAL, ...tlsArgs(), '--http-protocols', 'h1,h2', fixture('app.ts')];
        if (!servesH2(target)) {
          const result = await runCli(target, args);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--http-protocols h1,h2: .* cannot/);
          return;
        }
        await withRunningServer(Server.start(target, args), async (server) => {
          const reply = await h2Get(`${server.url}/info`, pems.ca);
          assert.equal(reply.status, 200);
          assert.equal(JSON.parse(reply.body).url, `${server.url}/info`);
          assert.equal((await httpsGet(`${server.url}/info`, pems.ca)).status, 200);
        });
      });

      it('HTTP/2 by ALPN shows the handler the client certificate, and is served behind a PROXY header or refused at start', async () => {
        if (!servesH2(target)) return; // the test above checks the refusal
        const certificates = verifiesOptionalCertificates(target) ? ['--ca-certs', pems.ca, '--cert-reqs', '1'] : [];
        const args = [...LOCAL, ...tlsArgs(), ...certificates, '--http-protocols', 'h2,h1', fixture('peer-app.ts')];
        await withRunningServer(Server.start(target, args), async (server) => {
          const reply = await h2Get(`${server.url}/`, pems.ca, { cert: pems.clientCert, key: pems.clientKey });
          const seen = JSON.parse(reply.body) as Peer;
          if (certificates.length > 0) {
            assert.equal((seen.certificate as { subject: string } | null)?.subject, 'CN=client');
            // --cert-reqs 1 refuses a certificate that does not verify on HTTP/2 as on HTTP/1.1.
            await assert.rejects(h2Get(`${server.url}/`, pems.ca, { cert: pems.strangerCert, key: pems.strangerKey }));
          } else {
            assert.ok(seen.certificate === null || seen.certificate === 'absent');
          }
        });
        const behindHeader = [...LOCAL, ...tlsArgs(), '--proxy-protocol', 'v1', '--http-protocols', 'h2,h1', fixture('peer-app.ts')];
        if (!readsProxyHeaders(target) || target.runtime === 'bun') {
          const result = await runCli(target, behindHeader);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--proxy-protocol|--http-protocols h2,h1 with --proxy-protocol: .*cannot|offers no HTTP\/2 behind a PROXY header/);
          return;
        }
        await withRunningServer(Server.start(target, behindHeader), async (server) => {
          const reply = await h2Get(`${server.url}/`, pems.ca, { proxyHeader: 'PROXY TCP4 203.0.113.9 10.0.0.1 4444 443\r\n' });
          assert.equal(reply.status, 200);
          assert.equal((JSON.parse(reply.body) as Peer).remote.hostname, '203.0.113.9');
        });
      });

      it('--cert-reqs 2: a client without a certificate from --ca-certs is refused', async () => {
        const args = [...LOCAL, ...tlsArgs(), '--ca-certs', pems.ca, '--cert-reqs', '2', fixture('app.ts')];
        if (!verifiesClientCertificates(target)) {
          const result = await runCli(target, args);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--cert-reqs 2: .*cannot/);
          return;
        }
        await withRunningServer(Server.start(target, args), async (server) => {
          await assert.rejects(httpsGet(`${server.url}/`, pems.ca));
          await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { cert: pems.strangerCert, key: pems.strangerKey }));
          const reply = await httpsGet(`${server.url}/`, pems.ca, { cert: pems.clientCert, key: pems.clientKey });
          assert.equal(reply.status, 200);
          assert.ok(server.liveWorkers().length === 1, 'the refused handshakes cost no worker');
        });
      });

      it('--cert-reqs 1: clients with no certificate or a valid one are served, one that does not verify is refused', async () => {
        const args = [...LOCAL, ...tlsArgs(), '--ca-certs', pems.ca, '--cert-reqs', '1', fixture('app.ts')];
        if (!verifiesOptionalCertificates(target)) {
          const result = await runCli(target, args);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--cert-reqs 1: /);
          return;
        }
        await withRunningServer(Server.start(target, args), async (server) => {
          assert.equal((await httpsGet(`${server.url}/`, pems.ca)).status, 200);
          assert.equal((await httpsGet(`${server.url}/`, pems.ca, { cert: pems.clientCert, key: pems.clientKey })).status, 200);
          await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { cert: pems.strangerCert, key: pems.strangerKey }));
        });
      });

      it('--ssl-min-version TLSv1.3 refuses a TLS 1.2 client; --ciphers refuses a client without one of them', async () => {
        const tls13 = [...LOCAL, ...tlsArgs(), '--ssl-min-version', 'TLSv1.3', fixture('app.ts')];
        if (!refusesTls12(target)) {
          const result = await runCli(target, tls13);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--ssl-min-version TLSv1\.3: .*cannot/);
        } else {
          await withRunningServer(Server.start(target, tls13), async (server) => {
            await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { maxVersion: 'TLSv1.2' }));
            assert.equal((await httpsGet(`${server.url}/`, pems.ca)).status, 200);
          });
        }
        const ciphers = [...LOCAL, ...tlsArgs(), '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', fixture('app.ts')];
        if (!restrictsCiphers(target)) {
          const result = await runCli(target, ciphers);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--ciphers: .*cannot/);
          return;
        }
        await withRunningServer(Server.start(target, ciphers), async (server) => {
          await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }));
          assert.equal((await httpsGet(`${server.url}/`, pems.ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).status, 200);
        });
      });

      it('reads a PROXY v1 or v2 header before the handshake: the handler and the access log see its client; a bad header, a peer not allowed or a header never finished is closed', async () => {
        // Where client certificates can be asked for, one is sent too (the handler sees it behind the header).
        const certificates = verifiesOptionalCertificates(target) ? ['--ca-certs', pems.ca, '--cert-reqs', '1'] : [];
        const args = [...LOCAL, ...tlsArgs(), ...certificates, '--proxy-protocol', 'auto',
          '--forwarded-allow-ips', '203.0.113.9', '--access-logfile', '-', '--access-logformat', 'access %(h)s %(U)s',
          fixture('peer-app.ts')];
        if (!readsProxyHeaders(target)) {
          const result = await runCli(target, args);
          assert.equal(result.code, 1);
          assert.match(result.stderr, /--proxy-protocol auto: \w+\.serve \(reuse-port mode\) .*cannot read PROXY headers/);
          return;
        }
        await withRunningServer(Server.start(target, args), async (server) => {
          const v1 = await httpsGet(`${server.url}/v1`, pems.ca, {
            proxyHeader: 'PROXY TCP4 203.0.113.9 10.0.0.1 4444 443\r\n', cert: pems.clientCert, key: pems.clientKey,
          });
          assert.equal(v1.status, 200);
          const seen = JSON.parse(v1.body) as Peer;
          assert.deepEqual([seen.remote.hostname, seen.remote.port, seen.url], ['203.0.113.9', 4444, `${server.url}/v1`]);
          if (certificates.length > 0) assert.equal((seen.certificate as { subject: string } | null)?.subject, 'CN=client');
          await server.waitForLine(/access 203\.0\.113\.9 \/v1/);
          // --forwarded-allow-ips judges the header's client, not the proxy: 203.0.113.9 is trusted, 127.0.0.1 not.
          const forwardedFor = { 'x-forwarded-for': '192.0.2.1' };
          const trusted = await httpsGet(`${server.url}/`, pems.ca, {
            proxyHeader: 'PROXY TCP4 203.0.113.9 10.0.0.1 4444 443\r\n', headers: forwardedFor,
          });
          assert.equal((JSON.parse(trusted.body) as Peer).remote.hostname, '192.0.2.1');
          const untrusted = await httpsGet(`${server.url}/`, pems.ca, { headers: forwardedFor });
          assert.equal((JSON.parse(untrusted.body) as Peer).remote.hostname, '127.0.0.1');
          const v2 = await httpsGet(`${server.url}/v2`, pems.ca, { proxyHeader: V2_HEADER });
          assert.equal((JSON.parse(v2.body) as Peer).remote.hostname, '198.51.100.4');
          // 2 MiB each way over one connection: both directions' backpressure.
          const body = Buffer.alloc(2 * 1024 * 1024, 'tls');
          const echoed = await httpsGet(`${server.url}/echo`, pems.ca, { proxyHeader: V2_HEADER, body });
          assert.equal(echoed.body, body.toString());
          if (certificates.length > 0) {
            await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { proxyHeader: V2_HEADER, cert: pems.strangerCert, key: pems.strangerKey }));
          }
          // A client with no header is served as itself.
          assert.equal((JSON.parse((await httpsGet(`${server.url}/`, pems.ca)).body) as Peer).remote.hostname, '127.0.0.1');
          await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { proxyHeader: 'PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n' }));
          await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: PROXY line with an address that is not TCP4/);
          assert.equal(server.liveWorkers().length, 1);
        });
        const notAllowed = [...LOCAL, ...tlsArgs(), '--proxy-protocol', 'v1', '--proxy-allow-from', '10.0.0.1', '--header-timeout', '1',
          fixture('peer-app.ts')];
        await withRunningServer(Server.start(target, notAllowed), async (server) => {
          assert.ok(await closedAfterPartialHeader(server.url), 'a header never finished: still open after 5 s');
          await assert.rejects(httpsGet(`${server.url}/`, pems.ca, { proxyHeader: 'PROXY TCP4 203.0.113.9 10.0.0.1 4444 443\r\n' }));
          await server.waitForLine(/Invalid request from ip=127\.0\.0\.1: PROXY header from a peer not in --proxy-allow-from/);
          assert.equal((JSON.parse((await httpsGet(`${server.url}/`, pems.ca)).body) as Peer).remote.hostname, '127.0.0.1');
        });
      });

      it('shows the handler the verified client certificate (--cert-reqs 2 and 1), null without one', async () => {
        const client = { cert: pems.clientCert, key: pems.clientKey };
        const expected = new X509Certificate(fs.readFileSync(pems.clientCert));
        const certificateOf = async (url: string, options: ClientOptions) => (JSON.parse((await httpsGet(url, pems.ca, options)).body) as Peer).certificate;
        if (!showsClientCertificates(target)) {
          await withRunningServer(Server.start(target, [...LOCAL, ...tlsArgs(), fixture('peer-app.ts')]), async (server) => {
            assert.equal(await certificateOf(server.url, {}), 'absent');
          });
          return;
        }
        await withRunningServer(Server.start(target, [...LOCAL, ...tlsArgs(), fixture('peer-app.ts')]), async (server) => {
          assert.equal(await certificateOf(server.url, client), null, 'not asked for: null');
        });
        if (!verifiesClientCertificates(target)) return;
        for (const certReqs of ['2', '1']) {
          const h2 = servesH2(target) ? ['--http-protocols', 'h1,h2'] : [];
          // With a `websocket` export the handler's info is the upgradable kind, which passes the certificate on.
          const app = certReqs === '1' ? 'peer-ws-app.ts' : 'peer-app.ts';
          const args = [...LOCAL, ...tlsArgs(), ...h2, '--ca-certs', pems.ca, '--cert-reqs', certReqs, fixture(app)];
          await withRunningServer(Server.start(target, args), async (server) => {
            if (h2.length > 0) {
              const overHttp2 = JSON.parse((await h2Get(`${server.url}/`, pems.ca, client)).body) as Peer;
              assert.equal((overHttp2.certificate as { subject: string } | null)?.subject, 'CN=client', 'over HTTP/2');
            }
            const shown = await certificateOf(server.url, client);
            assert.ok(shown && shown !== 'absent', `--cert-reqs ${certReqs}: ${JSON.stringify(shown)}`);
            assert.deepEqual(shown, {
              subject: expected.subject, issuer: expected.issuer, serialNumber: expected.serialNumber, fingerprint256: expected.fingerprint256,
              validTo: expected.validTo, derBytes: expected.raw.byteLength, pem: expected.toString(),
            });
            assert.equal(shown.subject, 'CN=client');
            if (certReqs === '1') assert.equal(await certificateOf(server.url, {}), null, 'optional and not sent: null');
          });
        }
      });

      it('a HUP serves the certificate files as they are now; bad ones keep the workers serving the old', async () => {
        const dir = tempDir();
        const cert = path.join(dir, 'cert.pem');
        const key = path.join(dir, 'key.pem');
        fs.copyFileSync(pems.oneCert, cert);
        fs.copyFileSync(pems.oneKey, key);
        try {
          await withRunningServer(Server.start(target, [...LOCAL, '--certfile', cert, '--keyfile', key, fixture('app.ts')]), async (server) => {
            assert.equal((await httpsGet(`${server.url}/`, pems.ca)).serverName, 'one');
            const before = server.liveWorkers();
            fs.copyFileSync(pems.twoCert, cert);
            fs.copyFileSync(pems.twoKey, key);
            server.signal('SIGHUP');
            await waitFor('a new worker in place of the old one', () => {
              const live = server.liveWorkers();
              return live.length === 1 && !before.includes(live[0]) ? live : undefined;
            }, 20000);
            assert.equal((await httpsGet(`${server.url}/`, pems.ca)).serverName, 'two');
            fs.copyFileSync(pems.oneKey, key);
            server.signal('SIGHUP');
            await server.waitForLine(/Reload failed, keeping the current configuration: --keyfile .* is not the private key of --certfile/);
            assert.equal((await httpsGet(`${server.url}/`, pems.ca)).serverName, 'two');
          });
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    });
  }

  for (const runtime of new Set(TEST_TARGETS.map((target) => target.runtime))) {
    it(`${runtime}: a key that is not the certificate's, or a missing file, fails at start (and --check-config) with one line and exit 1`, async () => {
      const mismatched = await runCli(runtime, [...LOCAL, '--certfile', pems.oneCert, '--keyfile', pems.twoKey, fixture('app.ts')]);
      assert.equal(mismatched.code, 1);
      const lines = mismatched.stderr.trim().split('\n').filter((line) => /ERROR|error/.test(line));
      assert.equal(lines.length, 1, mismatched.stderr);
      assert.match(lines[0], /--keyfile .*two\.key is not the private key of --certfile .*one\.pem/);
      const missing = await runCli(runtime, [...LOCAL, '--certfile', path.join(pems.dir, 'missing.pem'), '--keyfile', pems.oneKey, fixture('app.ts')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /cannot read --certfile .*missing\.pem: ENOENT/);
      const alone = await runCli(runtime, [...LOCAL, '--certfile', pems.oneCert, fixture('app.ts')]);
      assert.equal(alone.code, 1);
      assert.match(alone.stderr, /needs --keyfile/);
      if (process.getuid?.() === 0) {
        // The workers read the files after dropping privileges: a key only root can read is refused at start.
        fs.chmodSync(pems.oneKey, 0o600);
        const unreadable = await runCli(runtime, [...LOCAL, '--user', 'nobody', '--certfile', pems.oneCert, '--keyfile', pems.oneKey, fixture('app.ts')]);
        assert.equal(unreadable.code, 1);
        assert.match(unreadable.stderr, /--keyfile .*one\.key: the workers \(uid \d+, gid \d+\) cannot read it/);
      }
      const checked = await runCli(runtime, ['--check-config', '--certfile', pems.oneCert, '--keyfile', pems.twoKey, fixture('app.ts')]);
      assert.equal(checked.code, 1);
      assert.match(checked.stderr, /is not the private key of --certfile/);
    });
  }
});
