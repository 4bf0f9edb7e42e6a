/**
 * Error and access logging in Gunicorn's formats.
 *
 * Error-log lines are written at once, each with a single write call (`fs.writeSync` on an fd opened in
 * append mode, or one `process.stderr.write`): they matter most when a process is about to crash. Access-log
 * lines are batched (see {@link AccessBatch}): whole lines, written 50 ms after the first, at most PIPE_BUF
 * bytes, so lines coming from several processes that share a log file or a stdout pipe never interleave.
 *
 * @module
 */

import { Buffer } from 'node:buffer';
import { closeSync, openSync, writeSync } from 'node:fs';
import process from 'node:process';
import { DEFAULT_ACCESS_LOG_FORMAT, LOG_LEVELS, type LogLevel } from './settings.ts';

/** Configuration of a {@link Logger}. */
export interface LoggerOptions {
  /** Messages below this level are dropped. */
  logLevel: LogLevel;
  /** `'-'` = process.stderr, else a file path opened in append mode. */
  errorLog: string;
  /** `null` = access log off, `'-'` = stdout (fd 1), else a file path (append). */
  accessLog: string | null;
  /** Access-log format made of Gunicorn `%(atom)s` placeholders, or `json` ({@link JSON_ACCESS_FORMAT}). */
  accessLogFormat: string;
}

/** What one served request contributes to the access log. */
export interface AccessEntry {
  /** Client address; `''` when unknown. */
  remoteAddr: string;
  /** Request method, e.g. `'GET'`. */
  method: string;
  /** Request target as received, e.g. `'/a?b=1'`. */
  rawUri: string;
  /** Request protocol, e.g. `'HTTP/1.1'`. */
  protocol: string;
  /** Response status code. */
  status: number;
  /** Response body bytes. */
  bytesSent: number;
  /** Request headers (case-insensitive lookup). */
  requestHeaders: { get(name: string): string | null };
  /** Response headers (case-insensitive lookup). */
  responseHeaders: { get(name: string): string | null };
  /** When the request arrived, in milliseconds since the epoch (a number: a Date per request costs 0.4 µs on Deno). */
  startMs: number;
  /** How long the request took, in microseconds. */
  durationMicros: number;
  /** Pid of the process that served the request. */
  pid: number;
}

/**
 * This process's pid and its clock's origin, read once (a worker is its own process): every access-log entry
 * records both, and a read per request is a call (process.pid costs 0.04 µs on Deno).
 */
export const ENTRY_PID = process.pid;
/** See {@link ENTRY_PID}: an entry's startMs is this plus the performance.now() of its start. */
export const ENTRY_TIME_ORIGIN = performance.timeOrigin;

const SEVERITY: Readonly<Record<LogLevel, number>> = Object.freeze({
  debug: 10,
  info: 20,
  warning: 30,
  error: 40,
  critical: 50,
});

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** The local numeric UTC offset of `d`, as `+HHMM` / `-HHMM`. */
function utcOffset(d: Date): string {
  const minutesEast = -Math.round(d.getTimezoneOffset());
  const sign = minutesEast < 0 ? '-' : '+';
  const abs = Math.abs(minutesEast);
  return `${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`;
}

function hms(d: Date): string {
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** `2026-11-24 13:00:00 +0000` in local time. */
function errorTimestamp(d: Date): string {
  const y = String(d.getFullYear()).padStart(4, '0');
  return `${y}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${hms(d)} ${utcOffset(d)}`;
}

/**
 * Renders a time (ms since the epoch) once per period of `periodMs`: a busy worker logs many requests in the same
 * second, several in the same millisecond.
 */
function oncePer(periodMs: number, render: (d: Date) => string): (ms: number) => string {
  let period = NaN;
  let text = '';
  return (ms) => {
    const p = Math.floor(Math.trunc(ms) / periodMs); // the time a Date keeps: a fraction of a millisecond dropped
    if (p !== period) {
      text = render(new Date(ms));
      period = p;
    }
    return text;
  };
}

/** `[24/Nov/2026:13:00:00 +0000]` in local time (the local-time getters cost about 0.8 µs a line, hence the cache). */
const accessTimestamp = oncePer(1000, (d) => {
  const y = String(d.getFullYear()).padStart(4, '0');
  return `[${pad2(d.getDate())}/${MONTHS[d.getMonth()]}/${y}:${hms(d)} ${utcOffset(d)}]`;
});

/** `2026-11-24T13:00:00` in UTC: toISOString costs about 0.6 µs, once a second here. */
const isoSecond = oncePer(1000, (d) => d.toISOString().slice(0, 19));

/** `2026-11-24T13:00:00.123Z`, as toISOString writes it. */
const isoTimestamp = oncePer(1, (d) => `${isoSecond(d.getTime())}.${String(d.getUTCMilliseconds()).padStart(3, '0')}Z`);

/**
 * Formats one error-log line, without the trailing newline:
 * `[2026-11-24 13:00:00 +0000] [4242] [INFO] message` (local time).
 */
export function formatErrorLine(level: LogLevel, msg: string, pid: number, now: Date = new Date()): string {
  return `[${errorTimestamp(now)}] [${pid}] [${level.toUpperCase()}] ${msg}`;
}

/** Parses a level name case-insensitively (`'warn'` means `'warning'`); `undefined` if unknown. */
export function parseLogLevel(value: string): LogLevel | undefined {
  const v = String(value).trim().toLowerCase();
  if (v === 'warn') return 'warning';
  return (LOG_LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : undefined;
}

// ---------------------------------------------------------------------------
// Access-log formatting

/** Renders one atom of the access-log format. */
type AtomFn = (e: AccessEntry) => string;

/** A precompiled format: renders one access-log line, without the newline. */
type CompiledFormat = (e: AccessEntry) => string;

/** The `--access-logformat` keyword for one JSON object per line ({@link jsonAccessLine}). */
export const JSON_ACCESS_FORMAT = 'json';

function escapeQuotes(s: string): string {
  return s.includes('"') ? s.replace(/"/g, '\\"') : s;
}

function dashIfEmpty(s: string | null | undefined): string {
  return s === null || s === undefined || s === '' ? '-' : escapeQuotes(s);
}

function micros(e: AccessEntry): number {
  const d = Math.floor(Number(e.durationMicros));
  return Number.isFinite(d) && d > 0 ? d : 0;
}

function bytes(e: AccessEntry): number {
  const b = Math.floor(Number(e.bytesSent));
  return Number.isFinite(b) && b > 0 ? b : 0;
}

/** Splits a request target into its percent-encoded path and its query (fragment dropped). */
function splitTarget(rawUri: string): { path: string; query: string } {
  let s = rawUri;
  const hash = s.indexOf('#');
  if (hash >= 0) s = s.slice(0, hash);
  // absolute-form target: drop scheme and authority (an origin-form one, the usual, skips the regexp)
  const m = s.charCodeAt(0) === 47 /* / */ ? null : /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/.exec(s);
  if (m) s = s.slice(m[0].length);
  const q = s.indexOf('?');
  return q >= 0 ? { path: s.slice(0, q), query: s.slice(q + 1) } : { path: s, query: '' };
}

/** A path with its percent-escapes decoded (kept as it is when they are malformed). */
function decodePath(path: string): string {
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The user name of a Basic Authorization header, or `''`. */
function basicAuthUser(header: string | null): string {
  if (!header) return '';
  const m = /^\s*basic\s+(\S+)\s*$/i.exec(header);
  if (!m || !BASE64.test(m[1]) || m[1].length % 4 === 1) return '';
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 ? decoded.slice(0, colon) : '';
}

const FIXED_ATOMS: Readonly<Record<string, AtomFn>> = Object.freeze({
  h: (e: AccessEntry) => dashIfEmpty(e.remoteAddr),
  l: () => '-',
  u: (e: AccessEntry) => dashIfEmpty(basicAuthUser(e.requestHeaders.get('authorization'))),
  t: (e: AccessEntry) => (Number.isFinite(e.startMs) ? accessTimestamp(e.startMs) : '-'),
  r: (e: AccessEntry) => {
    const line = `${e.method} ${e.rawUri} ${e.protocol}`;
    // The parts are checked for a quote, not the line: a quote check on a line just built made it flatten (1.2% of
    // a Bun worker's samples with the log on).
    return e.rawUri.includes('"') || e.method.includes('"') || e.protocol.includes('"') ? escapeQuotes(line) : line;
  },
  m: (e: AccessEntry) => dashIfEmpty(e.method),
  U: (e: AccessEntry) => escapeQuotes(decodePath(splitTarget(e.rawUri).path)),
  q: (e: AccessEntry) => escapeQuotes(splitTarget(e.rawUri).query),
  H: (e: AccessEntry) => dashIfEmpty(e.protocol),
  s: (e: AccessEntry) => String(e.status),
  B: (e: AccessEntry) => String(bytes(e)),
  b: (e: AccessEntry) => {
    const b = bytes(e);
    return b === 0 ? '-' : String(b);
  },
  f: (e: AccessEntry) => dashIfEmpty(e.requestHeaders.get('referer')),
  a: (e: AccessEntry) => dashIfEmpty(e.requestHeaders.get('user-agent')),
  T: (e: AccessEntry) => String(Math.floor(micros(e) / 1_000_000)),
  M: (e: AccessEntry) => String(Math.floor(micros(e) / 1000)),
  D: (e: AccessEntry) => String(micros(e)),
  L: (e: AccessEntry) => {
    const us = micros(e);
    return `${Math.floor(us / 1_000_000)}.${String(us % 1_000_000).padStart(6, '0')}`;
  },
  p: (e: AccessEntry) => `<${e.pid}>`,
});

const dash: AtomFn = () => '-';

function compileAtom(name: string): AtomFn {
  const fixed = Object.prototype.hasOwnProperty.call(FIXED_ATOMS, name) ? FIXED_ATOMS[name] : undefined;
  if (fixed) return fixed;
  const hm = /^\{(.*)\}([io])$/s.exec(name);
  if (hm) {
    const header = hm[1].toLowerCase();
    if (header === '') return dash;
    if (hm[2] === 'i') return (e) => dashIfEmpty(safeGet(e.requestHeaders, header));
    return (e) => dashIfEmpty(safeGet(e.responseHeaders, header));
  }
  return dash;
}

function safeGet(headers: { get(name: string): string | null }, name: string): string | null {
  try {
    return headers.get(name);
  } catch {
    return null; // e.g. a name Headers rejects as invalid
  }
}

/**
 * One access-log line as a JSON object, Gunicorn's atoms as fields (README, "Access log"), written by
 * JSON.stringify: strings escaped, lone surrogates as `\uXXXX` escapes, so the line is valid JSON whatever bytes a
 * client sent; a missing value, or a number that is not finite, is null. JSON.stringify writes the line in one
 * piece natively: 0.55-0.9 times the time of a template with each string tested and quoted in JavaScript, on Bun 1.4,
 * Deno 2.9 and Node 22-26 (1.2 times on Node 20).
 */
function jsonAccessLine(e: AccessEntry): string {
  const { path, query } = splitTarget(e.rawUri);
  return JSON.stringify({
    remote_addr: e.remoteAddr || null,
    time: Number.isFinite(e.startMs) ? isoTimestamp(e.startMs) : null,
    method: e.method,
    path: decodePath(path),
    query,
    protocol: e.protocol,
    status: e.status,
    bytes: bytes(e),
    referer: safeGet(e.requestHeaders, 'referer'),
    user_agent: safeGet(e.requestHeaders, 'user-agent'),
    duration_us: micros(e),
    pid: e.pid,
  });
}

const { h, u, t, r, s, b, f, a } = FIXED_ATOMS;

/**
 * Gunicorn's default format written out, the same line as the general compiled form renders: that form calls its
 * atoms through one call site in a loop and builds the line piece by piece, 0.6-0.7 µs a line on Bun and Deno;
 * written out, the calls are direct and the line is one template, about 0.2 µs.
 */
function defaultAccessLine(e: AccessEntry): string {
  return `${h(e)} - ${u(e)} ${t(e)} "${r(e)}" ${s(e)} ${b(e)} "${f(e)}" "${a(e)}"`;
}

/** Compiles `json` or a Gunicorn format of literal text and atoms (`%%` stands for a literal `%`). */
function compileFormat(format: string): CompiledFormat {
  if (format === JSON_ACCESS_FORMAT) return jsonAccessLine;
  if (format === DEFAULT_ACCESS_LOG_FORMAT) return defaultAccessLine;
  const parts: (string | AtomFn)[] = [];
  let literal = '';
  const re = /%%|%\(([^)]*)\)s/g;
  let last = 0;
  for (let m = re.exec(format); m !== null; m = re.exec(format)) {
    literal += format.slice(last, m.index);
    last = re.lastIndex;
    if (m[0] === '%%') {
      literal += '%';
      continue;
    }
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push(compileAtom(m[1]));
  }
  literal += format.slice(last);
  if (literal !== '') parts.push(literal);
  return (entry) => {
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : part(entry);
    return out;
  };
}

const FORMAT_CACHE_MAX = 32;
const formatCache = new Map<string, CompiledFormat>();

function cachedFormat(format: string): CompiledFormat {
  let compiled = formatCache.get(format);
  if (compiled === undefined) {
    compiled = compileFormat(format);
    if (formatCache.size >= FORMAT_CACHE_MAX) formatCache.clear();
    formatCache.set(format, compiled);
  }
  return compiled;
}

/**
 * Renders one access-log line (without the trailing newline) from a Gunicorn
 * access-log format. Unknown atoms and missing headers render as `-`;
 * `"` inside string values is escaped as `\"`. The format `json` renders a JSON object.
 */
export function formatAccessLine(format: string, entry: AccessEntry): string {
  return cachedFormat(format)(entry);
}

// ---------------------------------------------------------------------------
// Sinks

/** Where lines go: a standard stream or an append-mode file (exported for the tests of AccessBatch). */
export interface Sink {
  write(text: string | Uint8Array): void;
  reopen(): void;
  close(): void;
}

function describeOpenError(what: string, path: string, err: unknown): Error {
  let reason: string;
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = e && typeof e.code === 'string' ? e.code : '';
  let message = e && typeof e.message === 'string' ? e.message : String(err);
  // Node-style messages look like "ENOENT: no such file or directory, open '/x'".
  if (code && message.startsWith(`${code}: `)) message = message.slice(code.length + 2);
  message = message.replace(/,\s*open\s+'.*'$/s, '').trim();
  reason = code && !message.includes(code) ? `${message} (${code})` : message;
  if (reason === '') reason = code || 'unknown error';
  return new Error(`cannot open ${what} '${path}': ${reason}`, { cause: err });
}

function openAppend(what: string, path: string): number {
  try {
    return openSync(path, 'a');
  } catch (err) {
    throw describeOpenError(what, path, err);
  }
}

/** How long one write waits in all for a full pipe to take bytes before it gives up (throws EAGAIN). */
const FULL_PIPE_PATIENCE_MS = 10_000;
/** What Atomics.wait sleeps on between two tries at a full pipe (nothing ever wakes it). */
const napCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `buf` to `fd`; one call unless the kernel writes short. A pipe in non-blocking mode whose reader
 * lags (Node and Bun make stdout so, for every process sharing it) answers EAGAIN: the write waits for room, 1 ms at
 * a time, as a blocking write would, so that nothing piles up in memory to be lost at exit.
 */
function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  let waitedMs = 0;
  while (off < buf.length) {
    let n: number;
    try {
      n = writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EAGAIN' || waitedMs >= FULL_PIPE_PATIENCE_MS) throw err;
      Atomics.wait(napCell, 0, 0, 1);
      waitedMs++;
      continue;
    }
    if (n <= 0) return;
    off += n;
  }
}

class StreamSink implements Sink {
  #stream: { write(chunk: string | Uint8Array): unknown };
  constructor(stream: { write(chunk: string | Uint8Array): unknown }) {
    this.#stream = stream;
  }
  write(text: string | Uint8Array): void {
    this.#stream.write(text);
  }
  reopen(): void {}
  close(): void {}
}

/**
 * Standard output, written with write(2) itself: `process.stdout.write` on Node and Bun queues what a lagging
 * pipe does not take at once, without bound, and the queue is lost when the worker exits. The access log waits for
 * the pipe instead, as Deno's stdout and Gunicorn's do. Lines the app writes through `process.stdout` meanwhile
 * may come out before or after a batch, never inside a line.
 */
class StdoutSink implements Sink {
  write(text: string | Uint8Array): void {
    writeAll(1, typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  }
  reopen(): void {}
  close(): void {}
}

class FileSink implements Sink {
  #what: string;
  #path: string;
  #fd: number;
  constructor(what: string, path: string) {
    this.#what = what;
    this.#path = path;
    this.#fd = openAppend(what, path);
  }
  write(text: string | Uint8Array): void {
    if (this.#fd < 0) return;
    writeAll(this.#fd, typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  }
  /** Opens the path anew, then closes the old fd; on failure the old fd stays in use and the error is thrown. */
  reopen(): void {
    if (this.#fd < 0) return;
    const fd = openAppend(this.#what, this.#path);
    const old = this.#fd;
    this.#fd = fd;
    try {
      closeSync(old);
    } catch {
      // already closed; nothing to do
    }
  }
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    try {
      closeSync(fd);
    } catch {
      // ignore
    }
  }
}

/**
 * Bytes the kernel writes to a pipe in one piece (POSIX's minimum PIPE_BUF, Linux's value): each write of access
 * lines is at most this long, so workers sharing a stdout pipe never split each other's lines.
 */
const PIPE_BUF = 4096;
/**
 * The most a batch holds before it is written early: written as PIPE_BUF pieces one after the other, which wake a
 * reader waiting on the pipe once or a few times rather than once per piece.
 */
const BATCH_BYTES = 16 * PIPE_BUF;
/** How long access lines may wait for more before they are written. */
const ACCESS_FLUSH_MS = 50;
const NEWLINE = 0x0a;

/**
 * How many access lines are formatted one after the other: a line formatted alone, right after the request's
 * socket calls, ran 2.5-3.7 times slower than the same work repeated (JSON.stringify of a `json` line in a Bun
 * worker under load: 0.7 µs, then 0.25 µs for the same call again; after a write(2), 0.55-0.7 µs against 0.19 µs in
 * a loop on Bun and 0.2 µs on Node, on the build machine, whose kernel isolates page tables on every system call).
 * Formatted in groups, `json` cost Bun about 1 µs less a request. The requests of a group wait for the last (or
 * for the flush) with their entries, at most this many.
 */
const FORMAT_GROUP = 16;

/**
 * Access lines gathered and written together: ACCESS_FLUSH_MS after the first of them (once per event-loop turn
 * cost Deno 2.5 µs more per line under load: a write every few requests), or at once when the next line would take
 * the batch past BATCH_BYTES. A write per line cost 10-13 µs of CPU a line on a stdout pipe (README, "Logs"). What
 * the batch is given is formatted FORMAT_GROUP at a time by `format` (undefined: nothing to write) and each line
 * encoded at once into one buffer kept for every batch, and its string can go: a batch kept as a string keeps
 * every line's string alive until it is written, and the collector's work made a logged request cost Bun 1.5 µs
 * more. Whatever is pending is written before a reopen or a close, and when the process exits. The sink must take
 * the bytes before its write returns (the buffer is reused).
 */
export class AccessBatch<Item> implements Sink {
  #sink: Sink;
  readonly #format: (item: Item) => string | undefined;
  /** Items not formatted yet. */
  readonly #items: Item[] = [];
  readonly #buffer = Buffer.allocUnsafe(BATCH_BYTES);
  /** Bytes of #buffer pending. */
  #used = 0;
  #scheduled = false;
  readonly #flushNow = () => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(sink: Sink, format: (item: Item) => string | undefined) {
    this.#sink = sink;
    this.#format = format;
    unflushedAtExit.add(this);
  }

  /** Adds one line's item, formatted with the group it completes or at the flush. */
  add(item: Item): void {
    if (this.#items.push(item) >= FORMAT_GROUP) this.#formatItems();
    this.#schedule();
  }

  /** Adds whole lines, each ending in a newline. */
  write(lines: string): void {
    this.#append(lines, 0);
    this.#schedule();
  }

  /** Formats the pending items into the batch, in order. */
  #formatItems(): void {
    const items = this.#items;
    for (let i = 0; i < items.length; i++) {
      const line = this.#format(items[i]);
      if (line !== undefined) this.#append(line, 1);
    }
    items.length = 0;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(this.#flushNow, ACCESS_FLUSH_MS).unref();
  }

  /** Adds `text` and `newlines` (0 or 1) newline; text longer than a whole batch once encoded is written at once, in pieces. */
  #append(text: string, newlines: number): void {
    if (this.#encode(text, newlines)) return;
    this.#writeEncoded();
    if (!this.#encode(text, newlines)) this.#writePieces(Buffer.from(newlines ? `${text}\n` : text, 'utf8'));
  }

  /** Encodes `text` and its newline after the pending bytes; false (nothing added) when they do not fit. */
  #encode(text: string, newlines: number): boolean {
    const room = BATCH_BYTES - this.#used;
    if (text.length + newlines > room) return false; // a UTF-16 unit is at least one byte
    // write() stops before a character that does not fit, which takes at most 4 bytes: fewer left may mean it stopped.
    const n = this.#buffer.write(text, this.#used);
    if ((room - n < 4 && Buffer.byteLength(text) !== n) || n + newlines > room) return false;
    this.#used += n;
    if (newlines) this.#buffer[this.#used++] = NEWLINE;
    return true;
  }

  /** Writes pieces of at most PIPE_BUF bytes, each cut after a newline where there is one. */
  #writePieces(bytes: Uint8Array): void {
    let rest = bytes;
    try {
      while (rest.length > PIPE_BUF) {
        const cut = rest.lastIndexOf(NEWLINE, PIPE_BUF - 1) + 1 || PIPE_BUF;
        this.#sink.write(rest.subarray(0, cut));
        rest = rest.subarray(cut);
      }
      if (rest.length > 0) this.#sink.write(rest);
    } catch {
      // a failing log must never take the process down
    }
  }

  /** Writes the pending lines. */
  flush(): void {
    this.#formatItems();
    this.#writeEncoded();
  }

  /** Writes the lines encoded so far. */
  #writeEncoded(): void {
    if (this.#used === 0) return;
    const bytes = this.#buffer.subarray(0, this.#used);
    this.#used = 0;
    this.#writePieces(bytes);
  }

  reopen(): void {
    this.flush();
    this.#sink.reopen();
  }

  close(): void {
    this.flush();
    unflushedAtExit.delete(this);
    this.#sink.close();
  }
}

/** Batches not yet closed: written out when the process exits without closing its logger (app code calling process.exit). */
const unflushedAtExit = new Set<{ flush(): void }>();
process.on('exit', () => {
  for (const batch of unflushedAtExit) batch.flush();
});

function describeError(err: unknown): string {
  const seen = new Set<unknown>();
  const lines: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && !seen.has(cur); depth++) {
    seen.add(cur);
    lines.push((depth === 0 ? '' : 'Caused by: ') + describeOne(cur));
    if (cur instanceof Error && cur.cause !== undefined) cur = cur.cause;
    else break;
  }
  return lines.join('\n');
}

function describeOne(err: unknown): string {
  try {
    if (err instanceof Error) {
      const head = `${err.name}: ${err.message}`;
      const stack = typeof err.stack === 'string' ? err.stack : '';
      if (stack === '') return head;
      return stack.includes(err.message) ? stack : `${head}\n${stack}`;
    }
    return String(err);
  } catch {
    return '[unprintable error]';
  }
}

/** Gunicorn's warning for a request refused as invalid, from the client's address (- when unknown). */
export function invalidRequestLine(ip: string | undefined, reason: string): string {
  return `Invalid request from ip=${ip || '-'}: ${reason}`;
}

/** Warning, error, critical and exception lines logged, whatever --log-level (statsd's `gunicorn.log.*`). */
export interface LoggedCounts {
  warning: number;
  error: number;
  critical: number;
  exception: number;
}

const logged: LoggedCounts = { warning: 0, error: 0, critical: 0, exception: 0 };

/** The lines this process logged since the last call (undefined: none), for the metrics; counting starts afresh. */
export function takeLoggedCounts(): LoggedCounts | undefined {
  if (logged.warning + logged.error + logged.critical + logged.exception === 0) return undefined;
  const counts = { ...logged };
  logged.warning = logged.error = logged.critical = logged.exception = 0;
  return counts;
}

/**
 * Gunicorn-style logger: an error log with level filtering and an optional
 * access log. Each error line is written at once with a single write call; access lines are batched.
 */
export class Logger {
  #threshold: number;
  #error: Sink;
  #access: AccessBatch<AccessEntry> | null;
  #format: CompiledFormat;
  #closed = false;

  /** Opens the configured logs; throws an Error naming the path and OS reason if a file cannot be opened. */
  constructor(options: LoggerOptions) {
    if (!Object.prototype.hasOwnProperty.call(SEVERITY, options.logLevel)) {
      throw new TypeError(`invalid log level: ${String(options.logLevel)}`);
    }
    this.#threshold = SEVERITY[options.logLevel];
    this.#format = compileFormat(options.accessLogFormat ?? DEFAULT_ACCESS_LOG_FORMAT);
    this.#error = options.errorLog === '-' ? new StreamSink(process.stderr) : new FileSink('error log', options.errorLog);
    try {
      if (options.accessLog === null || options.accessLog === undefined) this.#access = null;
      else this.#access = new AccessBatch(options.accessLog === '-' ? new StdoutSink() : new FileSink('access log', options.accessLog), (entry: AccessEntry) => this.#accessLine(entry));
    } catch (err) {
      this.#error.close();
      throw err;
    }
  }

  #log(level: LogLevel, msg: string, extra?: string): void {
    if (this.#closed || SEVERITY[level] < this.#threshold) return;
    let text = formatErrorLine(level, msg, process.pid) + '\n';
    if (extra !== undefined) text += extra + '\n';
    try {
      this.#error.write(text);
    } catch {
      // a failing log must never take the process down
    }
  }

  /** Logs at debug level. */
  debug(msg: string): void {
    this.#log('debug', msg);
  }

  /** Logs at info level. */
  info(msg: string): void {
    this.#log('info', msg);
  }

  /** Logs at warning level. */
  warning(msg: string): void {
    logged.warning++;
    this.#log('warning', msg);
  }

  /** Logs at error level. */
  error(msg: string): void {
    logged.error++;
    this.#log('error', msg);
  }

  /** Logs at critical level. */
  critical(msg: string): void {
    logged.critical++;
    this.#log('critical', msg);
  }

  /** Logs `msg` at error level followed by the error's stack (or `String(err)`), in one write. */
  exception(msg: string, err: unknown): void {
    logged.exception++;
    if (this.#closed || SEVERITY.error < this.#threshold) return;
    this.#log('error', msg, describeError(err));
  }

  /** Writes one access-log line for a served request (in a batch, within ACCESS_FLUSH_MS); no-op when the access log is off. */
  access(entry: AccessEntry): void {
    if (this.#closed || this.#access === null) return;
    this.#access.add(entry);
  }

  /** The access-log line of `entry`; undefined, and the error logged, when the format fails on it. */
  #accessLine(entry: AccessEntry): string | undefined {
    try {
      return this.#format(entry);
    } catch (err) {
      this.exception('Failed to format access log line', err);
      return undefined;
    }
  }

  /** Whether access logging is on. */
  get accessEnabled(): boolean {
    return this.#access !== null && !this.#closed;
  }

  /**
   * Closes and reopens file-backed logs (for SIGUSR1 log rotation). If a file
   * cannot be reopened the old descriptor stays in use and the failure is
   * reported on the error log instead of being thrown.
   */
  reopenFiles(): void {
    if (this.#closed) return;
    for (const sink of [this.#error, this.#access]) {
      if (sink === null) continue;
      try {
        sink.reopen();
      } catch (err) {
        this.error(err instanceof Error ? err.message : String(err));
      }
    }
  }

  /** Closes file-backed logs; later logging calls are no-ops. Idempotent. */
  close(): void {
    if (this.#closed) return;
    // The access lines still pending are formatted first, so that a line that fails to format is still logged.
    this.#access?.close();
    this.#closed = true;
    this.#error.close();
  }
}
