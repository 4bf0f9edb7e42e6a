// HTTP/2 over TLS, in-process, as the node-http engine serves it: node:http behind handshakeFirst offering the
// ALPN names of --http-protocols hands the connections that chose h2 to the worker's HTTP/2 server, the others to
// node:http. The certificate is made by openssl for the test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '../src/glogging.ts';
import { alpnProtocolsOf, negotiatedHttp2 } from '../src/http/node/alpn-router.ts';
import { Http2Connections } from '../src/http/node/http2-server.ts';
import type { FetchRequestListener } from '../src/http/node/listener.ts';
import { handshakeFirst } from '../src/http/node/tls-handshakes.ts';
import type { TlsOptions } from '../src/tls-options.ts';
import { tempDir } from './helpers.ts';

const logger = { debug: () => {} } as unknown as Logger;

describe('alpnProtocolsOf', () => {
  it('offers h2 and http/1.1 in the order of --http-protocols, h2c aside', () => {
    assert.deepEqual(alpnProtocolsOf(['h2', 'h1']), ['h2', 'http/1.1']);
    assert.deepEqual(alpnProtocolsOf(['h1', 'h2c', 'h2']), ['http/1.1', 'h2']);
    assert.deepEqual(alpnProtocolsOf(['h2c']), []);
  });
});

describe('negotiatedHttp2', () => {
  const dir = tempDir();
  let server: http.Server;
  let origin = '';
  let ca: Buffer;
  let skip: string | undefined;

  before(async () => {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'),
      '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'],
    { stdio: 'ignore', timeout: 20_000 });
    if (made.status !== 0) {
      skip = 'openssl cannot make a certificate here';
      return;
    }
    ca = fs.readFileSync(path.join(dir, 'cert.pem'));
    const h2Listener = ((request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) =>
      response.end(`h2 ${request.httpVersion} encrypted=${String((request.socket as { encrypted?: boolean }).encrypted)}`)) as unknown as FetchRequestListener;
    const http2Connections = new Http2Connections(h2Listener, {}, logger);
    server = http.createServer((request, response) => response.end(`h1 ${request.httpVersion}`));
    const options: TlsOptions = {
      key: fs.readFileSync(path.join(dir, 'key.pem'), 'utf8'), cert: ca.toString(), requestCert: false, rejectUnauthorized: false,
      verifySentCertificate: false, minVersion: 'TLSv1.2', ALPNProtocols: alpnProtocolsOf(['h2', 'h1']),
    };
    handshakeFirst(server, options, 10_000, logger, negotiatedHttp2(http2Connections));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  after(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves a client that chose h2 with the HTTP/2 server', async (t) => {
    if (skip) return t.skip(skip);
    const session = http2.connect(origin, { ca, servername: 'localhost' });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      assert.equal(body, 'h2 2.0 encrypted=true');
    } finally {
      session.close();
    }
  });

  it('serves an HTTP/1.1 client with node:http', async (t) => {
    if (skip) return t.skip(skip);
    const body = await new Promise<string>((resolve, reject) => {
      const request = https.get(`${origin}/`, { ca, agent: false, servername: 'localhost' }, (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve(text));
      });
      request.on('error', reject);
    });
    assert.equal(body, 'h1 1.1');
  });
});
