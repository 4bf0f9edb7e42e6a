// Gunicorn's request-parser corpus (/work/shared/corpus, or TSGUNICORN_CORPUS) against every target: each case's
// bytes on one connection, to an echo app. Valid cases must give the expected requests, invalid ones no 2xx.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fixture, ROOT, Server, TEST_TARGETS, withRunningServer } from './helpers.ts';

interface ExpectedRequest {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  body_base64: string;
}

interface CorpusCase {
  name: string;
  kind: 'valid' | 'invalid';
  raw_base64: string;
  config: Record<string, unknown>;
  expect?: ExpectedRequest[];
}

interface Echo {
  method: string;
  target: string;
  headers: [string, string][];
  body: string;
}

const CORPUS = process.env.TSGUNICORN_CORPUS ?? path.join(ROOT, '..', 'shared', 'corpus', 'gunicorn-requests.json');

/**
 * Per target, the counts reached when this test was written (of 50 valid and 63 invalid cases): a run may do
 * better, never worse. Issue 13 raises them. `valid` counts valid cases served exactly as expected (a hostless
 * HTTP/1.1 request answered 400 counts as expected; Deno.serve serves those, hence its lower count), `invalid`
 * the invalid cases refused. Node's reuse-port targets run under Node 26 (npm run test:newer-node).
 */
const BASELINE: Record<string, { valid: number; invalid: number }> = {
  'node inherit': { valid: 40, invalid: 62 },
  'node reuse-port': { valid: 40, invalid: 62 },
  'deno inherit': { valid: 41, invalid: 62 },
  'deno reuse-port': { valid: 24, invalid: 56 },
  'bun inherit': { valid: 44, invalid: 62 },
  'bun reuse-port': { valid: 34, invalid: 56 },
};

/** How long a case may stay silent before its connection is given up (a server that waits for more bytes). */
const QUIET_MS = 2000;

/** A response read off the wire: status and body (Content-Length or chunked). */
interface WireResponse {
  status: number;
  body: Buffer;
}

/** Splits as many complete HTTP/1.1 responses as `data` holds; returns them and the bytes left over. */
function parseResponses(data: Buffer): { responses: WireResponse[]; rest: Buffer } {
  const responses: WireResponse[] = [];
  let rest = data;
  for (;;) {
    const headEnd = rest.indexOf('\r\n\r\n');
    if (headEnd < 0) break;
    const head = rest.subarray(0, headEnd).toString('latin1').split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const field = (name: string) => head.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
    let offset = headEnd + 4;
    let body: Buffer;
    if (field('transfer-encoding')?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', offset);
        if (lineEnd < 0) return { responses, rest };
        const size = parseInt(rest.subarray(offset, lineEnd).toString('latin1'), 16);
        if (rest.length < lineEnd + 2 + size + 2) return { responses, rest };
        parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        offset = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(field('content-length') ?? 0);
      if (rest.length < offset + length) break;
      body = rest.subarray(offset, offset + length);
      offset += length;
    }
    responses.push({ status, body });
    rest = rest.subarray(offset);
  }
  return { responses, rest };
}

/** How long to wait for anything more once the responses a case needs have come. */
const SETTLE_MS = 150;

/**
 * Sends one case's bytes and collects the responses until the server closes, goes quiet, or has sent `enough`
 * (then a short settle time catches any extra response).
 */
function exchange(url: string, raw: Buffer, enough: number): Promise<WireResponse[]> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    let data = Buffer.alloc(0);
    let timer: ReturnType<typeof setTimeout>;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseResponses(data).responses);
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, QUIET_MS);
    };
    socket.on('connect', () => {
      // No half-close after the bytes: Deno's node:http treats one as an abort, racing the request it belongs to.
      socket.write(raw);
      quiet();
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (parseResponses(data).responses.length < enough) return quiet();
      clearTimeout(timer);
      timer = setTimeout(finish, SETTLE_MS);
    });
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

/** The path and query a Fetch app sees for a request-target, built the way the servers build request.url. */
function appTarget(target: string): string {
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? new URL(target) : new URL(`http://localhost${target.startsWith('/') ? target : `/${target}`}`);
  return url.pathname + url.search;
}

/** Fields as a Fetch Headers object holds them: lower-case names, repeated fields joined with `, `, sorted. */
function fetchHeaders(fields: [string, string][]): string[] {
  const headers = new Headers();
  for (const [name, value] of fields) {
    // Gunicorn drops names with `_` (its default header_map); a Fetch server keeps them, so neither side counts.
    if (!name.includes('_')) headers.append(name, value);
  }
  return [...headers].map(([name, value]) => `${name}: ${value}`).sort();
}

/** Whether an echoed request is the expected one. */
function matches(echo: Echo, expected: ExpectedRequest): boolean {
  return echo.method === expected.method &&
    echo.target === appTarget(expected.target) &&
    JSON.stringify(fetchHeaders(echo.headers)) === JSON.stringify(fetchHeaders(expected.headers)) &&
    echo.body === expected.body_base64;
}

/**
 * An HTTP/1.1 request without Host: Gunicorn serves it, tsgunicorn answers 400 as RFC 9112 section 3.2 requires
 * (node:http, Deno.serve and Bun.serve all do), a deviation the README documents.
 */
const hostless = (request: ExpectedRequest) => request.version === '1.1' &&
  !request.headers.some(([name]) => name.toLowerCase() === 'host');

/** Whether the responses are the expected requests echoed, in order, up to a hostless one that gets 400. */
function servedCorrectly(responses: WireResponse[], expected: ExpectedRequest[]): boolean {
  for (const [index, request] of expected.entries()) {
    const response = responses[index];
    if (hostless(request)) return response?.status === 400;
    if (response?.status !== 200) return false;
    try {
      if (!matches(JSON.parse(response.body.toString('utf8')) as Echo, request)) return false;
    } catch {
      return false;
    }
  }
  return responses.length === expected.length;
}

const cases = (JSON.parse(fs.readFileSync(CORPUS, 'utf8')).cases as CorpusCase[]).filter((c) => Object.keys(c.config).length === 0);

for (const target of TEST_TARGETS) {
  describe(`${target.name}: Gunicorn's request corpus`, () => {
    it('serves the valid cases and refuses the invalid ones, no worse than the baseline', async () => {
      await withRunningServer(Server.start(target, ['-b', '127.0.0.1:0', fixture('echo-app.ts')]), async (server) => {
        const failed = { valid: [] as string[], invalid: [] as string[] };
        const run = async (c: CorpusCase) => {
          // A valid case needs all its responses; an invalid one is settled by its first.
          const responses = await exchange(server.url, Buffer.from(c.raw_base64, 'base64'), c.kind === 'valid' ? c.expect!.length : 1);
          const ok = c.kind === 'valid' ? servedCorrectly(responses, c.expect!) : !responses.some((r) => r.status >= 200 && r.status < 300);
          if (!ok) failed[c.kind].push(c.name);
        };
        // A few connections at a time: a case that waits for more bytes costs QUIET_MS.
        for (let i = 0; i < cases.length; i += 16) await Promise.all(cases.slice(i, i + 16).map(run));
        const total = (kind: 'valid' | 'invalid') => cases.filter((c) => c.kind === kind).length;
        const valid = total('valid') - failed.valid.length;
        const invalid = total('invalid') - failed.invalid.length;
        console.log(`# corpus ${target.name}: valid served correctly ${valid}/${total('valid')}, invalid refused ${invalid}/${total('invalid')}`);
        console.log(`#   valid not served: ${failed.valid.join(' ')}\n#   invalid not refused: ${failed.invalid.join(' ')}`);
        const baseline = BASELINE[target.name] ?? { valid: 0, invalid: 0 };
        if (!BASELINE[target.name]) console.log(`#   no baseline recorded for ${target.name}`);
        assert.ok(valid >= baseline.valid, `valid served correctly ${valid} < baseline ${baseline.valid}`);
        assert.ok(invalid >= baseline.invalid, `invalid refused ${invalid} < baseline ${baseline.invalid}`);
      });
    });
  });
}
