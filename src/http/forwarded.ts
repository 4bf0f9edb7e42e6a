/**
 * Forwarding headers from a trusted proxy (`--forwarded-allow-ips`): Gunicorn's secure scheme headers and
 * `X-Forwarded-Host` decide the scheme and host of `request.url`, and `X-Forwarded-For` the client address the
 * app gets as `info.remoteAddr`. From any other peer they are passed to the app unchanged and mean nothing.
 *
 * The rules (README, "Behind a proxy"):
 * - scheme: every value of every secure scheme header (comma-separated values count one by one) must say the
 *   same: the configured value (ASCII case-insensitive) means https, anything else http; a mix gets 400, as in
 *   Gunicorn;
 * - host: the last value of `X-Forwarded-Host` (the one the nearest proxy added); one that is not a host[:port]
 *   gets 400;
 * - client: `X-Forwarded-For` read from the right, skipping the addresses that are trusted proxies themselves;
 *   the first other one is the client (all trusted: the leftmost), as uvicorn and Werkzeug read it. An entry that
 *   is not an IP address there leaves the peer's own address.
 *
 * Engines look for the headers first (a length filter on raw fields, in a pass over the fields they make anyway, or
 * a few `Headers.has`), so a request without any costs next to nothing; the peer is checked only when one is there.
 */
import net from 'node:net';
import type { Settings } from '../settings.ts';
import { pathStartOf } from './request-target.ts';
import { type PeerMatcher, parsePeerList } from './trusted-peers.ts';
import type { RemoteAddress } from './types.ts';

const FORWARDED_FOR = 'x-forwarded-for';
const FORWARDED_HOST = 'x-forwarded-host';

/** What trusted forwarding headers change about a request; a field is set only where they change something. */
export interface Forwarded {
  /** The client used https (tsgunicorn itself serves http only). */
  https?: true;
  host?: string;
  client?: RemoteAddress;
}

/** Forwarding headers a trusted peer sent that cannot be followed: the client gets 400. */
export class ForwardedHeaderError extends Error {
  /** The status of the answer. */
  readonly status = 400;
}

/** A host with an optional port, as a Host field carries it. */
const HOST = /^(?:[A-Za-z0-9._~!$&'()*+;=%-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The address in one X-Forwarded-For entry (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`), if it is an IP address. */
function entryAddress(entry: string): string | undefined {
  let address = entry.trim();
  if (address.startsWith('[')) address = address.slice(1, address.indexOf(']'));
  else if (address.indexOf(':') === address.lastIndexOf(':') && address.includes('.')) address = address.split(':')[0];
  return net.isIP(address) === 0 ? undefined : address;
}

/** The rules of forwarding headers for one configuration. */
export class ForwardingPolicy {
  /** Lower-case names of the headers that matter, and their lengths (to skip the others without lower-casing). */
  private readonly names: string[];
  private readonly nameLengths: Set<number>;
  /** Secure scheme header names (lower case) and the value that means https (lower case). */
  private readonly secureSchemes: [string, string][];
  private readonly trusted: PeerMatcher;

  constructor(settings: Pick<Settings, 'forwardedAllowIps' | 'secureSchemeHeaders'>) {
    this.trusted = parsePeerList(settings.forwardedAllowIps, '--forwarded-allow-ips');
    this.secureSchemes = settings.secureSchemeHeaders.map((entry) => {
      const at = entry.indexOf('=');
      return [entry.slice(0, at).toLowerCase(), entry.slice(at + 1).toLowerCase()];
    });
    this.names = [...new Set([FORWARDED_FOR, FORWARDED_HOST, ...this.secureSchemes.map(([name]) => name)])];
    this.nameLengths = new Set(this.names.map((name) => name.length));
  }

  /** Whether a field name (lower case) is a forwarding header. */
  watches(name: string): boolean {
    return this.nameLengths.has(name.length) && this.names.includes(name);
  }

  /** Whether raw fields ([name, value, name, value, …]) include a forwarding header. */
  inRawHeaders(rawHeaders: readonly string[]): boolean {
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i];
      if (this.nameLengths.has(name.length) && this.names.includes(name.toLowerCase())) return true;
    }
    return false;
  }

  /**
   * Whether a Headers object includes a forwarding header, with a `has` per name: cheap where Headers live in JS
   * (Bun), not on a Deno.serve request (about 0.4 µs each), where watches() in a pass the engine makes over the
   * fields anyway is the way.
   */
  inHeaders(headers: Headers): boolean {
    for (const name of this.names) if (headers.has(name)) return true;
    return false;
  }

  /** Whether a peer may forward: an address in `--forwarded-allow-ips`, or any unix-socket peer. */
  trusts(peer: RemoteAddress): boolean {
    return peer.transport === 'unix' || this.trusted(peer.hostname);
  }

  /**
   * What a trusted peer's headers change; `get(name)` returns a field's values joined with `, ` (as
   * `Headers.get` does), or null. Throws a ForwardedHeaderError for headers that cannot be followed.
   */
  read(get: (name: string) => string | null): Forwarded {
    const forwarded: Forwarded = {};
    let secure: boolean | undefined;
    for (const [name, secureValue] of this.secureSchemes) {
      const values = get(name);
      if (values === null) continue;
      for (const value of values.split(',')) {
        const says = value.trim().toLowerCase() === secureValue;
        if (secure !== undefined && secure !== says) throw new ForwardedHeaderError('secure scheme headers contradict each other');
        secure = says;
      }
    }
    if (secure) forwarded.https = true;
    const hosts = get(FORWARDED_HOST);
    if (hosts !== null) {
      const host = hosts.slice(hosts.lastIndexOf(',') + 1).trim();
      if (!HOST.test(host)) throw new ForwardedHeaderError(`X-Forwarded-Host ${JSON.stringify(host)} is not a host`);
      forwarded.host = host;
    }
    const clients = get(FORWARDED_FOR);
    if (clients !== null) forwarded.client = this.client(clients.split(','));
    return forwarded;
  }

  /** The client in an X-Forwarded-For list: the rightmost entry that is not a trusted proxy. */
  private client(entries: string[]): RemoteAddress | undefined {
    for (let i = entries.length - 1; i >= 0; i--) {
      const address = entryAddress(entries[i]);
      if (address === undefined) return undefined;
      if (i === 0 || !this.trusted(address)) return { transport: 'tcp', hostname: address, port: 0 };
    }
    return undefined;
  }
}

/**
 * `url` with the forwarded scheme and host; throws a ForwardedHeaderError if that is no URL. `url` is absolute
 * (`http://host/path`), as servers build request URLs.
 */
export function forwardedUrl(url: string, forwarded: Forwarded): string {
  const authorityStart = url.indexOf('//') + 2;
  const pathStart = pathStartOf(url);
  const scheme = forwarded.https ? 'https' : url.slice(0, authorityStart - 3);
  const host = forwarded.host ?? url.slice(authorityStart, pathStart < 0 ? url.length : pathStart);
  try {
    return new URL(`${scheme}://${host}${pathStart < 0 ? '/' : url.slice(pathStart)}`).href;
  } catch {
    throw new ForwardedHeaderError(`forwarded host ${JSON.stringify(host)} makes no URL`);
  }
}

/** Whether what the headers say changes the URL. */
export function changesUrl(forwarded: Forwarded): boolean {
  return forwarded.https !== undefined || forwarded.host !== undefined;
}
