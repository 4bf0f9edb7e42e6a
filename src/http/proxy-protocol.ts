/**
 * HAProxy's PROXY protocol (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt): the header a proxy
 * sends on a connection's first bytes to say who the client is, as v1 text (`PROXY TCP4 src dst sport dport\r\n`)
 * or v2 binary. Parsing only (no I/O): the engines feed a connection's first bytes to a ProxyPreamble and act on
 * its verdict.
 */
import net from 'node:net';
import type { ProxyProtocolMode, Settings } from '../settings.ts';
import { rawErrorAnswer } from './app-response.ts';
import { parsePeerList } from './trusted-peers.ts';

/** Which headers a connection may start with (`--proxy-protocol` other than off). */
export type ProxyHeaderVersions = Exclude<ProxyProtocolMode, 'off'>;

/** The client a PROXY header names. */
export interface ProxyClient {
  address: string;
  port: number;
}

/** What the first bytes of a connection are. */
export type ProxyHeaderParse =
  | { kind: 'incomplete' }
  /** No PROXY header: the bytes are the connection's first request. */
  | { kind: 'absent' }
  /** A header of `length` bytes; `client` is absent for `PROXY UNKNOWN`, v2 LOCAL and address families without one. */
  | { kind: 'header'; length: number; client?: ProxyClient }
  | { kind: 'invalid'; reason: string };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 line, CRLF included (the specification's limit). */
const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
const V2_FIXED_LENGTH = 16;
const PORT = /^\d{1,5}$/;

/** Whether `data` starts with `prefix`, or is a beginning of it (then more bytes decide). */
function startsWithOrIsPrefix(data: Uint8Array, prefix: Uint8Array): 'yes' | 'maybe' | 'no' {
  const length = Math.min(data.length, prefix.length);
  for (let i = 0; i < length; i++) if (data[i] !== prefix[i]) return 'no';
  return data.length >= prefix.length ? 'yes' : 'maybe';
}

function parseV1(data: Uint8Array): ProxyHeaderParse {
  const end = Buffer.from(data.buffer, data.byteOffset, Math.min(data.length, V1_MAX_LENGTH)).indexOf('\r\n');
  if (end < 0) {
    return data.length >= V1_MAX_LENGTH ? { kind: 'invalid', reason: 'PROXY line longer than 107 bytes' } : { kind: 'incomplete' };
  }
  const line = Buffer.from(data.buffer, data.byteOffset, end).toString('latin1');
  const invalid = (why: string): ProxyHeaderParse => ({ kind: 'invalid', reason: `${why}: ${JSON.stringify(line)}` });
  const fields = line.split(' ');
  if (fields[1] === 'UNKNOWN') return { kind: 'header', length: end + 2 };
  if (fields.length !== 6) return invalid('PROXY line without 6 fields');
  const [, protocol, source, destination, sourcePort, destinationPort] = fields;
  const isAddress = protocol === 'TCP4' ? net.isIPv4 : protocol === 'TCP6' ? net.isIPv6 : undefined;
  if (!isAddress) return invalid('PROXY line with a protocol other than TCP4, TCP6 or UNKNOWN');
  if (!isAddress(source) || !isAddress(destination)) return invalid(`PROXY line with an address that is not ${protocol}`);
  for (const port of [sourcePort, destinationPort]) {
    if (!PORT.test(port) || Number(port) > 65535) return invalid('PROXY line with a port that is not 0-65535');
  }
  return { kind: 'header', length: end + 2, client: { address: source, port: Number(sourcePort) } };
}

/** An IPv6 address in its usual text form, from 16 bytes. */
function formatIPv6(bytes: Uint8Array): string {
  const groups = Array.from({ length: 8 }, (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1]);
  // The longest run of two or more zero groups becomes `::`.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j + 1;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((group) => group.toString(16)).join(':');
  return bestStart < 0 ? hex(0, 8) : `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

function parseV2(data: Uint8Array): ProxyHeaderParse {
  if (data.length < V2_FIXED_LENGTH) return { kind: 'incomplete' };
  const version = data[12] >> 4;
  const command = data[12] & 0x0f;
  const family = data[13] >> 4;
  const transport = data[13] & 0x0f;
  const length = V2_FIXED_LENGTH + ((data[14] << 8) | data[15]);
  if (version !== 2) return { kind: 'invalid', reason: `PROXY v2 header of version ${version}` };
  if (command > 1) return { kind: 'invalid', reason: `PROXY v2 header with command ${command}` };
  if (family > 3 || transport > 2) return { kind: 'invalid', reason: `PROXY v2 header with family/protocol byte 0x${data[13].toString(16)}` };
  if (data.length < length) return { kind: 'incomplete' };
  // LOCAL (a health check from the proxy itself), AF_UNSPEC and AF_UNIX carry no client address to use.
  if (command === 0 || family === 0 || family === 3) return { kind: 'header', length };
  if (transport !== 1) return { kind: 'invalid', reason: 'PROXY v2 header for a transport other than TCP' };
  const addressBytes = family === 1 ? 4 : 16;
  if (length < V2_FIXED_LENGTH + 2 * addressBytes + 4) return { kind: 'invalid', reason: 'PROXY v2 header too short for its addresses' };
  const source = data.subarray(V2_FIXED_LENGTH, V2_FIXED_LENGTH + addressBytes);
  const portAt = V2_FIXED_LENGTH + 2 * addressBytes;
  const address = family === 1 ? source.join('.') : formatIPv6(source);
  return { kind: 'header', length, client: { address, port: (data[portAt] << 8) | data[portAt + 1] } };
}

/** Reads the PROXY header at the start of `data` (a connection's first bytes so far), if there is one. */
export function parseProxyHeader(data: Uint8Array, versions: ProxyHeaderVersions): ProxyHeaderParse {
  let undecided = false;
  if (versions !== 'v2') {
    const v1 = startsWithOrIsPrefix(data, V1_PREFIX);
    if (v1 === 'yes') return parseV1(data);
    undecided = v1 === 'maybe';
  }
  if (versions !== 'v1') {
    const v2 = startsWithOrIsPrefix(data, V2_SIGNATURE);
    if (v2 === 'yes') return parseV2(data);
    undecided ||= v2 === 'maybe';
  }
  return undecided && data.length > 0 ? { kind: 'incomplete' } : { kind: 'absent' };
}

/** What an engine does with a connection once its first bytes are read. */
export type ProxyVerdict =
  /** Serve HTTP on `rest`; `client`, when set, is the connection's client from now on. */
  | { action: 'serve'; rest: Uint8Array; client?: ProxyClient }
  /** Answer PROXY_HEADER_REFUSAL and close: a malformed header. */
  | { action: 'refuse'; reason: string }
  /** Close at once: a PROXY header from a peer not in --proxy-allow-from. */
  | { action: 'close'; reason: string };

/** The answer to a malformed PROXY header, written before the connection closes. */
export const PROXY_HEADER_REFUSAL = Buffer.from(rawErrorAnswer(400), 'latin1');

/**
 * A connection's first bytes until they show whether a PROXY header is there. A peer not allowed to send one may
 * still send plain HTTP (as in Gunicorn); one that sends a header anyway is closed.
 */
export class ProxyPreamble {
  private readonly versions: ProxyHeaderVersions;
  private readonly peerAllowed: boolean;
  private pending?: Uint8Array;

  constructor(versions: ProxyHeaderVersions, peerAllowed: boolean) {
    this.versions = versions;
    this.peerAllowed = peerAllowed;
  }

  /** Takes the next bytes; undefined while the verdict needs more. */
  feed(chunk: Uint8Array): ProxyVerdict | undefined {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const parsed = parseProxyHeader(data, this.versions);
    if (parsed.kind === 'incomplete') {
      this.pending = data;
      return undefined;
    }
    this.pending = undefined;
    if (parsed.kind === 'absent') return { action: 'serve', rest: data };
    if (!this.peerAllowed) return { action: 'close', reason: 'PROXY header from a peer not in --proxy-allow-from' };
    if (parsed.kind === 'invalid') return { action: 'refuse', reason: parsed.reason };
    return { action: 'serve', rest: data.subarray(parsed.length), client: parsed.client };
  }
}

/**
 * The PROXY header reader of each new connection under a configuration, or undefined with `--proxy-protocol off`:
 * `peer` is the connection's own address (undefined for a unix socket, whose peers may always send one).
 */
export function proxyPreambles(
  settings: Pick<Settings, 'proxyProtocol' | 'proxyAllowIps'>,
): ((peer: string | undefined) => ProxyPreamble) | undefined {
  if (settings.proxyProtocol === 'off') return undefined;
  const versions = settings.proxyProtocol;
  const allowed = parsePeerList(settings.proxyAllowIps, '--proxy-allow-from');
  return (peer) => new ProxyPreamble(versions, peer === undefined || allowed(peer));
}
