/**
 * Lists of trusted peers, written as Gunicorn writes `--forwarded-allow-ips` and `--proxy-allow-from`: `*` (every
 * peer), or IPv4 and IPv6 addresses and CIDR networks separated by commas. One parser and one matcher serve both
 * settings. IPv4 is matched in its IPv4-mapped IPv6 form, so that `127.0.0.1` also matches the `::ffff:127.0.0.1`
 * a dual-stack socket reports.
 */
import net from 'node:net';
import { ConfigError } from '../errors.ts';

/** Whether a peer's address (as a socket reports it) is in the list. */
export type PeerMatcher = (address: string) => boolean;

/** A network in IPv6 form: 16 address bytes and how many leading bits of them count. */
interface Network {
  bytes: Uint8Array;
  prefixBits: number;
}

/** How many peers' answers a matcher keeps (the list is cleared when full). */
const KNOWN_PEERS = 1024;

/** `::ffff:0:0/96`, the IPv4-mapped prefix. */
const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** The 16 bytes of an IPv4 or IPv6 address (IPv4 mapped into IPv6), or undefined if `text` is not one. */
function addressBytes(text: string): Uint8Array | undefined {
  const zone = text.indexOf('%');
  const address = zone < 0 ? text : text.slice(0, zone);
  const family = net.isIP(address);
  if (family === 4) return Uint8Array.from([...MAPPED_PREFIX, ...address.split('.').map(Number)]);
  if (family !== 6) return undefined;
  const bytes = new Uint8Array(16);
  const groupsOf = (part: string) => (part === '' ? [] : part.split(':'));
  const gap = address.indexOf('::');
  const head = groupsOf(gap < 0 ? address : address.slice(0, gap));
  const tail = gap < 0 ? [] : groupsOf(address.slice(gap + 2));
  // A dotted IPv4 tail (`::ffff:1.2.3.4`) stands for the last two groups.
  const last = tail.length > 0 ? tail : head;
  if (last.length > 0 && last[last.length - 1].includes('.')) {
    const [a, b, c, d] = last.pop()!.split('.').map(Number);
    last.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}

/** The mask of byte `index` of an address for a prefix of `prefixBits` bits. */
function byteMask(prefixBits: number, index: number): number {
  const bits = Math.max(0, Math.min(8, prefixBits - 8 * index));
  return (0xff << (8 - bits)) & 0xff;
}

/** Whether `address` has the first `prefixBits` bits of `network`. */
function inNetwork(address: Uint8Array, { bytes, prefixBits }: Network): boolean {
  for (let i = 0; i < 16; i++) {
    const mask = byteMask(prefixBits, i);
    if (mask === 0) return true;
    if ((address[i] & mask) !== bytes[i]) return false;
  }
  return true;
}

/** One entry of a list (an address or a CIDR network), or what is wrong with it. */
function parseEntry(entry: string): Network | string {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const bytes = addressBytes(address);
  if (!bytes || address.includes('%')) return 'is not an IP address, a CIDR network or *';
  const v4 = net.isIPv4(address);
  const maxBits = v4 ? 32 : 128;
  const bitsText = slash < 0 ? String(maxBits) : entry.slice(slash + 1);
  const bits = Number(bitsText);
  if (!/^\d{1,3}$/.test(bitsText) || bits > maxBits) return `has a prefix length that is not 0-${maxBits}`;
  const prefixBits = v4 ? 96 + bits : bits;
  // Python's ip_network(strict=True), as Gunicorn: `10.0.0.1/8` is refused, not read as 10.0.0.0/8.
  if (bytes.some((byte, i) => (byte & ~byteMask(prefixBits, i) & 0xff) !== 0)) {
    return 'has host bits set (write the network address)';
  }
  return { bytes, prefixBits };
}

/**
 * Parses a list of trusted peers; throws a ConfigError naming the setting's flag and the bad entry. `*` anywhere
 * in the list trusts every peer.
 */
export function parsePeerList(list: string, flag: string): PeerMatcher {
  const entries = list.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.includes('*')) return () => true;
  const networks = entries.map((entry) => {
    const network = parseEntry(entry);
    if (typeof network === 'string') throw new ConfigError(`invalid value "${list}" for ${flag}: "${entry}" ${network}`);
    return network;
  });
  // A server sees the same few peers (its proxies) again and again: their answers are kept.
  const known = new Map<string, boolean>();
  return (address) => {
    let trusted = known.get(address);
    if (trusted === undefined) {
      const bytes = addressBytes(address);
      trusted = bytes !== undefined && networks.some((network) => inNetwork(bytes, network));
      if (known.size >= KNOWN_PEERS) known.clear();
      known.set(address, trusted);
    }
    return trusted;
  };
}
