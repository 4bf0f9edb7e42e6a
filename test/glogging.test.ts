/** Unit tests for src/glogging.ts (runs under node:test on Node, Deno and Bun). */

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

import { AccessBatch, Logger, formatAccessLine, formatErrorLine, parseLogLevel } from '../src/glogging.ts';
import type { AccessEntry } from '../src/glogging.ts';
import { waitFor } from './helpers.ts';
import { DEFAULT_ACCESS_LOG_FORMAT, LOG_LEVELS, type LogLevel } from '../src/settings.ts';

/** The local UTC offset of `d` as +HHMM / -HHMM, computed independently of the module. */
function offsetOf(d: Date): string {
  const east = -d.getTimezoneOffset();
  const abs = Math.abs(east);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${east < 0 ? '-' : '+'}${hh}${mm}`;
}

/** A minimal case-insensitive header bag. */
function headers(init: Record<string, string>): { get(name: string): string | null } {
  const map = new Map<string, string>();
  for (const [k, v] of Object.entries(init)) map.set(k.toLowerCase(), v);
  return { get: (name: string) => map.get(name.toLowerCase()) ?? null };
}

// 24 Nov 2026 13:00:00 local time, whatever the local zone is.
const START = new Date(2026, 10, 24, 13, 0, 0);

function sample(over: Partial<AccessEntry> = {}): AccessEntry {
  return {
    remoteAddr: '127.0.0.1',
    method: 'GET',
    rawUri: '/a%20b/c?x=1&y=2',
    protocol: 'HTTP/1.1',
    status: 200,
    bytesSent: 1234,
    requestHeaders: new Headers({
      Referer: 'http://example.com/ref',
      'User-Agent': 'curl/8.0',
      'X-Forwarded-For': '10.0.0.1, 10.0.0.2',
      Authorization: 'Basic ' + Buffer.from('alice:secret').toString('base64'),
    }),
    responseHeaders: new Headers({ 'Content-Type': 'text/plain; charset=utf-8' }),
    startMs: START.getTime(),
    durationMicros: 2_345_678,
    pid: 4242,
    ...over,
  };
}

/** The repository's root, where the child below runs. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const atom = (name: string, e: AccessEntry = sample()): string => formatAccessLine(`%(${name})s`, e);

describe('constants and parseLogLevel', () => {
  it('lists levels in increasing severity', () => {
    assert.deepEqual([...LOG_LEVELS], ['debug', 'info', 'warning', 'error', 'critical']);
  });

  it('has Gunicorn’s default access format', () => {
    assert.equal(DEFAULT_ACCESS_LOG_FORMAT, '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"');
  });

  it('parses level names case-insensitively, with warn as an alias', () => {
    assert.equal(parseLogLevel('DEBUG'), 'debug');
    assert.equal(parseLogLevel('Info'), 'info');
    assert.equal(parseLogLevel('warning'), 'warning');
    assert.equal(parseLogLevel('WARN'), 'warning');
    assert.equal(parseLogLevel('error'), 'error');
    assert.equal(parseLogLevel('critical'), 'critical');
    assert.equal(parseLogLevel('verbose'), undefined);
    assert.equal(parseLogLevel(''), undefined);
  });
});

describe('formatAccessLine', () => {
  it('renders the default format on a sample entry', () => {
    const expected =
      `127.0.0.1 - alice [24/Nov/2026:13:00:00 ${offsetOf(START)}] ` +
      '"GET /a%20b/c?x=1&y=2 HTTP/1.1" 200 1234 "http://example.com/ref" "curl/8.0"';
    assert.equal(formatAccessLine(DEFAULT_ACCESS_LOG_FORMAT, sample()), expected);
  });

  it('renders the default format (written out) as the general form renders the same atoms', () => {
    // A trailing `%%` keeps the format off the default's written-out path.
    const general = (e: AccessEntry) => formatAccessLine(`${DEFAULT_ACCESS_LOG_FORMAT}%%`, e).slice(0, -1);
    const entries = [
      sample(),
      sample({ remoteAddr: '', method: 'PO"ST', rawUri: '/"q"', status: 404, bytesSent: 0, startMs: NaN }),
      sample({ requestHeaders: headers({ referer: 'a"b', 'user-agent': '', authorization: 'Basic !!' }) }),
      sample({ requestHeaders: headers({}), responseHeaders: headers({}) }),
      sample({ requestHeaders: headers({ authorization: `Basic ${btoa('a"b:pw')}`, 'user-agent': 'x"y' }) }),
      sample({ protocol: 'HTTP/1.0', bytesSent: 7, durationMicros: 5 }),
    ];
    for (const e of entries) assert.equal(formatAccessLine(DEFAULT_ACCESS_LOG_FORMAT, e), general(e));
  });

  it('writes lines of every size and script whole, within PIPE_BUF bytes per write, in order', () => {
    const out: Buffer[] = [];
    const batch = new AccessBatch({ write: (chunk) => void out.push(Buffer.from(chunk)), reopen() {}, close() {} }, (line: string) => line);
    const lines: string[] = [];
    // ASCII, 2-, 3- and 4-byte characters, lone surrogates; lengths that end a batch exactly and lines past 4096 bytes
    const pieces = ['x', 'é', '€', '😀', '\ud800'];
    for (let i = 0; i < 400; i++) {
      const line = `${i} ${pieces[i % pieces.length].repeat((i * 37) % 1500)}`;
      lines.push(line);
      batch.add(line);
    }
    batch.close();
    for (const chunk of out) assert.ok(chunk.length <= 4096, `a write of ${chunk.length} bytes`);
    const expected = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
    assert.ok(Buffer.concat(out).equals(expected), 'every byte, in order');
    // a piece of a line longer than PIPE_BUF is the only write that does not end a line
    for (const chunk of out) assert.ok(chunk.at(-1) === 0x0a || (chunk.length === 4096 && !chunk.includes(0x0a)));
  });

  it('renders the t atom with an explicit offset shape', () => {
    assert.match(atom('t'), /^\[24\/Nov\/2026:13:00:00 [+-]\d{4}\]$/);
    const jan = new Date(2027, 0, 5, 7, 8, 9);
    assert.equal(atom('t', sample({ startMs: jan.getTime() })), `[05/Jan/2027:07:08:09 ${offsetOf(jan)}]`);
  });

  it('renders each simple atom', () => {
    assert.equal(atom('h'), '127.0.0.1');
    assert.equal(atom('h', sample({ remoteAddr: '' })), '-');
    assert.equal(atom('l'), '-');
    assert.equal(atom('u'), 'alice');
    assert.equal(atom('r'), 'GET /a%20b/c?x=1&y=2 HTTP/1.1');
    assert.equal(atom('m'), 'GET');
    assert.equal(atom('U'), '/a b/c');
    assert.equal(atom('q'), 'x=1&y=2');
    assert.equal(atom('H'), 'HTTP/1.1');
    assert.equal(atom('s'), '200');
    assert.equal(atom('B'), '1234');
    assert.equal(atom('b'), '1234');
    assert.equal(atom('f'), 'http://example.com/ref');
    assert.equal(atom('a'), 'curl/8.0');
    assert.equal(atom('T'), '2');
    assert.equal(atom('M'), '2345');
    assert.equal(atom('D'), '2345678');
    assert.equal(atom('L'), '2.345678');
    assert.equal(atom('p'), '<4242>');
  });

  it('handles zero bytes, short durations and missing values', () => {
    const e = sample({
      bytesSent: 0,
      durationMicros: 42,
      rawUri: '/plain',
      requestHeaders: headers({}),
    });
    assert.equal(atom('B', e), '0');
    assert.equal(atom('b', e), '-');
    assert.equal(atom('T', e), '0');
    assert.equal(atom('M', e), '0');
    assert.equal(atom('D', e), '42');
    assert.equal(atom('L', e), '0.000042');
    assert.equal(atom('q', e), '');
    assert.equal(atom('U', e), '/plain');
    assert.equal(atom('u', e), '-');
    assert.equal(atom('f', e), '-');
    assert.equal(atom('a', e), '-');
  });

  it('falls back to the raw path on bad percent-encoding', () => {
    assert.equal(atom('U', sample({ rawUri: '/bad%zz%E0?q' })), '/bad%zz%E0');
  });

  it('uses only the path of an absolute-form target for U and q', () => {
    const e = sample({ rawUri: 'http://example.com:8080/p%41th?k=v#frag' });
    assert.equal(atom('U', e), '/pAth');
    assert.equal(atom('q', e), 'k=v');
  });

  it('renders request and response headers by case-insensitive name', () => {
    assert.equal(atom('{x-forwarded-for}i'), '10.0.0.1, 10.0.0.2');
    assert.equal(atom('{X-Forwarded-For}i'), '10.0.0.1, 10.0.0.2');
    assert.equal(atom('{content-type}o'), 'text/plain; charset=utf-8');
    assert.equal(atom('{Content-Type}o'), 'text/plain; charset=utf-8');
    assert.equal(atom('{x-missing}i'), '-');
    assert.equal(atom('{x-missing}o'), '-');
    assert.equal(atom('{content-type}i'), '-');
  });

  it('renders unknown atoms as "-" and keeps literal text', () => {
    assert.equal(formatAccessLine('<%(nope)s|%(zz)s|%({x}e)s>', sample()), '<-|-|->');
    assert.equal(formatAccessLine('100%% %(s)s %d', sample()), '100% 200 %d');
    assert.equal(formatAccessLine('no atoms', sample()), 'no atoms');
    assert.equal(formatAccessLine('', sample()), '');
  });

  it('escapes double quotes in string values', () => {
    const e = sample({
      rawUri: '/q?"x"',
      requestHeaders: headers({ 'User-Agent': 'evil "agent"', Referer: '"r"', 'X-A': 'a"b' }),
      responseHeaders: headers({ 'X-B': '"' }),
    });
    assert.equal(atom('a', e), 'evil \\"agent\\"');
    assert.equal(atom('f', e), '\\"r\\"');
    assert.equal(atom('r', e), 'GET /q?\\"x\\" HTTP/1.1');
    assert.equal(atom('q', e), '\\"x\\"');
    assert.equal(atom('{x-a}i', e), 'a\\"b');
    assert.equal(atom('{x-b}o', e), '\\"');
    assert.equal(formatAccessLine('"%(a)s"', e), '"evil \\"agent\\""');
  });

  it('decodes the basic-auth user name', () => {
    const auth = (value: string): AccessEntry => sample({ requestHeaders: headers({ Authorization: value }) });
    const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
    assert.equal(atom('u', auth('Basic ' + b64('bob:pw:with:colons'))), 'bob');
    assert.equal(atom('u', auth('basic ' + b64('j\u00f6rg:x'))), 'j\u00f6rg');
    assert.equal(atom('u', auth('Basic ' + b64('a"b:x'))), 'a\\"b');
    assert.equal(atom('u', auth('Basic ' + b64('nocolon'))), '-');
    assert.equal(atom('u', auth('Basic ' + b64(':pw'))), '-');
    assert.equal(atom('u', auth('Bearer ' + b64('bob:pw'))), '-');
    assert.equal(atom('u', auth('Basic !!!notbase64')), '-');
  });
});

describe('formatAccessLine json', () => {
  it('renders one JSON object with the atoms as fields', () => {
    const line = formatAccessLine('json', sample());
    assert.ok(!line.includes('\n'));
    assert.deepEqual(JSON.parse(line), {
      remote_addr: '127.0.0.1',
      time: START.toISOString(),
      method: 'GET',
      path: '/a b/c',
      query: 'x=1&y=2',
      protocol: 'HTTP/1.1',
      status: 200,
      bytes: 1234,
      referer: 'http://example.com/ref',
      user_agent: 'curl/8.0',
      duration_us: 2_345_678,
      pid: 4242,
    });
  });

  it('writes the time as toISOString does, milliseconds included (a fraction of one dropped, as a Date drops it: toward zero)', () => {
    for (const ms of [Date.UTC(2026, 10, 24, 13, 0, 0, 7), Date.UTC(2026, 10, 24, 13, 0, 0, 999), Date.UTC(2026, 10, 24, 13, 0, 1, 0), -1500]) {
      assert.equal(JSON.parse(formatAccessLine('json', sample({ startMs: ms }))).time, new Date(ms).toISOString());
      assert.equal(JSON.parse(formatAccessLine('json', sample({ startMs: ms + 0.75 }))).time, new Date(ms + 0.75).toISOString());
    }
  });

  it('writes missing values as null', () => {
    const e = sample({ remoteAddr: '', requestHeaders: headers({}), startMs: NaN, status: NaN });
    const got = JSON.parse(formatAccessLine('json', e));
    assert.equal(got.status, null);
    assert.equal(got.remote_addr, null);
    assert.equal(got.referer, null);
    assert.equal(got.user_agent, null);
    assert.equal(got.time, null);
  });

  it('stays one valid JSON line whatever the strings hold', () => {
    const nasty = 'a"b\\c\nd\re\u0000f\u001b[31m\ud800g\udc00h\u00ff\u2028';
    const e = sample({
      method: nasty,
      rawUri: `/${nasty}?${nasty}`,
      protocol: nasty,
      requestHeaders: headers({ referer: nasty, 'user-agent': '\u00e9\u00ff latin-1 bytes' }),
    });
    const line = formatAccessLine('json', e);
    assert.ok(!/[\n\r]/.test(line));
    assert.ok(!/[\ud800-\udfff]/.test(line), 'lone surrogates are escaped');
    const got = JSON.parse(line);
    assert.equal(got.method, nasty);
    assert.equal(got.referer, nasty);
    assert.equal(got.query, nasty);
    assert.equal(got.user_agent, '\u00e9\u00ff latin-1 bytes');
    // and the UTF-8 bytes written to the log decode to the same object
    assert.deepEqual(JSON.parse(Buffer.from(line + '\n', 'utf8').toString('utf8')), got);
  });

  it('quotes each string as JSON.stringify does', () => {
    const values = ['', 'plain', 'a"b', 'a\\b', '\u0000', '\u001f', '\u007f', 'x\ud83d\ude00y', '\ud83d', '\ude00', '\u2028', 'é'];
    for (const value of values) {
      const line = formatAccessLine('json', sample({ requestHeaders: headers({ referer: value }) }));
      assert.ok(line.includes(`"referer":${JSON.stringify(value)},`), `referer ${JSON.stringify(value)}`);
    }
  });
});

describe('formatErrorLine', () => {
  it('has Gunicorn’s shape', () => {
    const line = formatErrorLine('info', 'Listening at: http://127.0.0.1:8000 (4242)', 4242);
    assert.match(
      line,
      /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}\] \[4242\] \[INFO\] Listening at: http:\/\/127\.0\.0\.1:8000 \(4242\)$/,
    );
  });

  it('uses local time and the local offset of the given date', () => {
    const d = new Date(2026, 10, 24, 13, 0, 0);
    assert.equal(formatErrorLine('warning', 'hi', 7, d), `[2026-11-24 13:00:00 ${offsetOf(d)}] [7] [WARNING] hi`);
  });

  it('upper-cases every level', () => {
    const d = new Date(2026, 0, 2, 3, 4, 5);
    for (const level of LOG_LEVELS) {
      assert.match(formatErrorLine(level, 'm', 1, d), new RegExp(`^\\[2026-01-02 03:04:05 [+-]\\d{4}\\] \\[1\\] \\[${level.toUpperCase()}\\] m$`));
    }
  });
});

describe('Logger', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsgunicorn-glogging-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
  const LINE = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}\] \[(\d+)\] \[([A-Z]+)\] (.*)$/;

  it('drops messages below the configured level', () => {
    const path = join(dir, 'levels.log');
    const log = new Logger({ logLevel: 'warning', errorLog: path, accessLog: null, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT });
    log.debug('d');
    log.info('i');
    log.warning('w');
    log.error('e');
    log.critical('c');
    log.close();
    const got = lines(path).map((l) => {
      const m = LINE.exec(l);
      assert.ok(m, `unexpected line: ${l}`);
      assert.equal(m[1], String(process.pid));
      return `${m[2]} ${m[3]}`;
    });
    assert.deepEqual(got, ['WARNING w', 'ERROR e', 'CRITICAL c']);
  });

  it('logs everything at debug level and appends to an existing file', () => {
    const path = join(dir, 'debug.log');
    for (const level of ['debug', 'debug'] as LogLevel[]) {
      const log = new Logger({ logLevel: level, errorLog: path, accessLog: null, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT });
      log.debug('one');
      log.info('two');
      log.close();
    }
    assert.deepEqual(
      lines(path).map((l) => LINE.exec(l)?.slice(2).join(' ')),
      ['DEBUG one', 'INFO two', 'DEBUG one', 'INFO two'],
    );
  });

  it('exception() logs at error level followed by the stack', () => {
    const path = join(dir, 'exc.log');
    const log = new Logger({ logLevel: 'info', errorLog: path, accessLog: null, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT });
    log.exception('Error handling request', new Error('boom'));
    log.exception('Non-error thrown', 'just a string');
    log.close();
    const text = readFileSync(path, 'utf8').split('\n');
    assert.match(text[0], /\[ERROR\] Error handling request$/);
    assert.match(text[1], /^Error: boom$/);
    assert.ok(text.slice(2).some((l) => /^\s+at /.test(l)), 'stack frames follow');
    const i = text.findIndex((l) => l.endsWith('[ERROR] Non-error thrown'));
    assert.ok(i > 0);
    assert.equal(text[i + 1], 'just a string');
  });

  it('exception() respects the level', () => {
    const path = join(dir, 'exc-critical.log');
    const log = new Logger({ logLevel: 'critical', errorLog: path, accessLog: null, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT });
    log.exception('hidden', new Error('x'));
    log.close();
    assert.equal(readFileSync(path, 'utf8'), '');
  });

  it('writes access lines to a file with the configured format', () => {
    const errPath = join(dir, 'a-error.log');
    const accPath = join(dir, 'access.log');
    const log = new Logger({ logLevel: 'info', errorLog: errPath, accessLog: accPath, accessLogFormat: '%(h)s %(s)s %({x-forwarded-for}i)s %(p)s' });
    assert.equal(log.accessEnabled, true);
    log.access(sample());
    log.access(sample({ status: 404, remoteAddr: '' }));
    log.close();
    assert.equal(log.accessEnabled, false);
    assert.deepEqual(lines(accPath), ['127.0.0.1 200 10.0.0.1, 10.0.0.2 <4242>', '- 404 10.0.0.1, 10.0.0.2 <4242>']);
    assert.equal(readFileSync(errPath, 'utf8'), '');
  });

  it('logs the error of a line it cannot format and writes the lines around it', () => {
    const errPath = join(dir, 'b-error.log');
    const accPath = join(dir, 'b-access.log');
    const log = new Logger({ logLevel: 'info', errorLog: errPath, accessLog: accPath, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT });
    const failing = { get(): string | null { throw new Error('headers gone'); } };
    log.access(sample({ status: 201 }));
    log.access(sample({ requestHeaders: failing }));
    log.access(sample({ status: 202 }));
    log.close();
    assert.deepEqual(lines(accPath).map((line) => line.split('" ')[1].slice(0, 3)), ['201', '202']);
    assert.match(readFileSync(errPath, 'utf8'), /\[ERROR\] Failed to format access log line\nError: headers gone/);
  });

  it('accessLog null is a no-op', () => {
    const errPath = join(dir, 'null-error.log');
    const log = new Logger({ logLevel: 'debug', errorLog: errPath, accessLog: null, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT });
    assert.equal(log.accessEnabled, false);
    const origOut = process.stdout.write;
    const origErr = process.stderr.write;
    let writes = 0;
    const counting = function (this: unknown): boolean {
      writes++;
      return true;
    };
    try {
      process.stdout.write = counting as typeof process.stdout.write;
      process.stderr.write = counting as typeof process.stderr.write;
      log.access(sample());
    } finally {
      process.stdout.write = origOut;
      process.stderr.write = origErr;
    }
    log.close();
    assert.equal(writes, 0);
    assert.equal(readFileSync(errPath, 'utf8'), '');
  });

  it("'-' sends error lines to stderr, each at once", () => {
    const log = new Logger({ logLevel: 'info', errorLog: '-', accessLog: null, accessLogFormat: '%(s)s %(m)s' });
    const origErr = process.stderr.write;
    const err: string[] = [];
    try {
      process.stderr.write = ((chunk: string) => {
        err.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      log.info('hello');
      log.debug('dropped');
      log.exception('oops', new Error('bad'));
    } finally {
      process.stderr.write = origErr;
    }
    log.close();
    assert.equal(err.length, 2);
    assert.match(err[0], /\[INFO\] hello\n$/);
    assert.match(err[1], /\[ERROR\] oops\nError: bad\n/);
  });

  it('writes a batch 50 ms after its first line, or once it holds 64 KiB, as pieces of whole lines of at most 4096 bytes', async () => {
    const out: string[] = [];
    const batch = new AccessBatch({ write: (chunk) => void out.push(Buffer.from(chunk).toString('utf8')), reopen() {}, close() {} }, (line: string) => line);
    const line = (c: string) => `200 ${c.repeat(95)}\n`; // 100 bytes when ASCII
    for (let i = 0; i < 100; i++) batch.write(line('x'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(out.length, 0, 'the lines wait for more');
    await waitFor('the 50 ms flush', () => out.length > 0 || undefined, 5000);
    assert.equal(out.length, 3, '100 lines of 100 bytes: 3 writes of at most 40 lines');
    for (let i = 0; i < 700; i++) batch.write(line('x'));
    assert.equal(out.length, 3 + 17, 'the 655 lines that fill 64 KiB written at once, 40 lines a piece');
    // non-ASCII text: 195 bytes a line
    for (let i = 0; i < 40; i++) batch.write(line('é'));
    batch.close();
    assert.equal(out.join('').split('\n').length - 1, 840);
    for (const chunk of out) {
      assert.ok(Buffer.byteLength(chunk) <= 4096, `a write of ${Buffer.byteLength(chunk)} bytes`);
      assert.ok(chunk.endsWith('\n'), 'whole lines only');
    }
  });

  it('formats what it is given 16 items at a time, in order, the rest at the flush; an item formatted as nothing is no line', async () => {
    const out: string[] = [];
    const formatted: number[] = [];
    const batch = new AccessBatch({ write: (chunk) => void out.push(Buffer.from(chunk).toString('utf8')), reopen() {}, close() {} }, (n: number) => {
      formatted.push(n);
      return n % 5 === 4 ? undefined : `line ${n}`;
    });
    for (let i = 0; i < 15; i++) batch.add(i);
    assert.equal(formatted.length, 0, 'fifteen items wait for a sixteenth');
    batch.add(15);
    assert.deepEqual(formatted, [...Array(16).keys()]);
    for (let i = 16; i < 20; i++) batch.add(i);
    await waitFor('the 50 ms flush', () => out.length > 0 || undefined, 5000);
    assert.deepEqual(formatted, [...Array(20).keys()]);
    batch.close();
    const expected = [...Array(20).keys()].filter((n) => n % 5 !== 4).map((n) => `line ${n}\n`).join('');
    assert.equal(out.join(''), expected);
  });

  it('waits for a stdout pipe that its reader empties late, and loses no line at process.exit', async () => {
    const LINES = 3000; // about 300 KB: several times what a pipe holds
    const child = spawn(process.execPath, ['--import', './scripts/register-typescript.mjs', 'test/fixtures/access-log-writer.ts', String(LINES)], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
    });
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      const chunks: Buffer[] = [];
      child.stdout!.pause();
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the pipe fills meanwhile
      child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk)).resume();
      const [code] = await once(child, 'close');
      assert.equal(code, 0);
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.startsWith('200 '));
      assert.equal(lines.length, LINES);
      assert.deepEqual(lines.map((l) => Number(l.slice(5, 11))), [...Array(LINES).keys()], 'whole lines, in order');
    } finally {
      clearTimeout(kill);
      child.kill('SIGKILL');
    }
  });

  it('reopenFiles() starts writing to a fresh file after rotation', () => {
    const errPath = join(dir, 'rot-error.log');
    const accPath = join(dir, 'rot-access.log');
    const log = new Logger({ logLevel: 'info', errorLog: errPath, accessLog: accPath, accessLogFormat: '%(s)s' });
    log.info('before');
    log.access(sample({ status: 201 }));
    renameSync(errPath, errPath + '.1');
    renameSync(accPath, accPath + '.1');
    log.info('still old'); // the old fd follows the renamed file until reopened
    log.reopenFiles();
    log.info('after');
    log.access(sample({ status: 202 }));
    log.close();
    assert.deepEqual(lines(errPath + '.1').map((l) => LINE.exec(l)?.[3]), ['before', 'still old']);
    assert.deepEqual(lines(errPath).map((l) => LINE.exec(l)?.[3]), ['after']);
    assert.deepEqual(lines(accPath + '.1'), ['201']);
    assert.deepEqual(lines(accPath), ['202']);
  });

  it('reopenFiles() keeps the old file when the path cannot be reopened', () => {
    const sub = mkdtempSync(join(dir, 'gone-'));
    const errPath = join(sub, 'e.log');
    const log = new Logger({ logLevel: 'info', errorLog: errPath, accessLog: null, accessLogFormat: '' });
    log.info('one');
    renameSync(sub, sub + '.moved');
    log.reopenFiles(); // directory vanished: must not throw
    log.info('two');
    log.close();
    const got = lines(join(sub + '.moved', 'e.log'));
    assert.equal(got.length, 3);
    assert.match(got[1], /\[ERROR\] cannot open error log '.*e\.log': /);
    assert.match(got[2], /\[INFO\] two$/);
    assert.equal(existsSync(errPath), false);
  });

  it('close() is idempotent and later calls are no-ops', () => {
    const path = join(dir, 'closed.log');
    const log = new Logger({ logLevel: 'debug', errorLog: path, accessLog: join(dir, 'closed-access.log'), accessLogFormat: '%(s)s' });
    log.close();
    log.close();
    log.error('ignored');
    log.access(sample());
    log.reopenFiles();
    assert.equal(readFileSync(path, 'utf8'), '');
    assert.equal(readFileSync(join(dir, 'closed-access.log'), 'utf8'), '');
  });

  it('throws an error naming the path and the OS reason when a log cannot be opened', () => {
    const bad = join(dir, 'no-such-dir', 'x.log');
    assert.throws(
      () => new Logger({ logLevel: 'info', errorLog: bad, accessLog: null, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT }),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.includes(bad), e.message);
        assert.match(e.message, /no such file|ENOENT|not found/i);
        assert.ok(!e.message.includes('\n'));
        return true;
      },
    );
    const okErr = join(dir, 'ok-error.log');
    assert.throws(
      () => new Logger({ logLevel: 'info', errorLog: okErr, accessLog: bad, accessLogFormat: DEFAULT_ACCESS_LOG_FORMAT }),
      /cannot open access log/,
    );
  });

  it('rejects an invalid level', () => {
    assert.throws(
      () => new Logger({ logLevel: 'loud' as LogLevel, errorLog: '-', accessLog: null, accessLogFormat: '' }),
      TypeError,
    );
  });
});
