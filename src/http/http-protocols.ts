/**
 * `--http-protocols` (Gunicorn's name): the HTTP versions a server offers, in order of preference, from `h1`
 * (HTTP/1.1), `h2` (HTTP/2 negotiated by ALPN over TLS) and `h2c` (cleartext HTTP/2 with prior knowledge, from
 * the peers of `--forwarded-allow-ips` only), written as a comma-separated list.
 */
import { ConfigError } from '../errors.ts';

/** One protocol of the list. */
export type HttpProtocol = 'h1' | 'h2' | 'h2c';

const PROTOCOLS: readonly HttpProtocol[] = ['h1', 'h2', 'h2c'];

/** The protocols of a `--http-protocols` value, in its order; throws a ConfigError naming a bad or repeated one. */
export function parseHttpProtocols(list: string): HttpProtocol[] {
  const names = list.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '');
  if (names.length === 0) throw new ConfigError(`invalid value ${JSON.stringify(list)} for --http-protocols: expected a list of ${PROTOCOLS.join(', ')}`);
  for (const [index, name] of names.entries()) {
    if (!(PROTOCOLS as readonly string[]).includes(name)) {
      throw new ConfigError(`invalid value ${JSON.stringify(list)} for --http-protocols: unknown protocol "${name}" ` +
        `(expected ${PROTOCOLS.join(', ')})`);
    }
    if (names.indexOf(name) !== index) throw new ConfigError(`invalid value ${JSON.stringify(list)} for --http-protocols: "${name}" twice`);
  }
  return names as HttpProtocol[];
}

/** What a cleartext (plain TCP or unix) socket serves under a `--http-protocols` value. */
export interface CleartextProtocols {
  /** HTTP/1.1. */
  h1: boolean;
  /** HTTP/2 with prior knowledge, for trusted peers. */
  h2c: boolean;
}

/** The protocols a cleartext socket serves (`h2` needs TLS, so it plays no part there). */
export function cleartextProtocols(list: string): CleartextProtocols {
  const protocols = parseHttpProtocols(list);
  return { h1: protocols.includes('h1'), h2c: protocols.includes('h2c') };
}
