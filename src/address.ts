/**
 * Bind addresses as Gunicorn writes them (HOST:PORT, [IPv6]:PORT, unix:PATH, fd://N), parsed without touching
 * the network: the settings table validates with it and the sockets module binds with it.
 */
import net from 'node:net';
import path from 'node:path';
import { ConfigError } from './errors.ts';

/** A parsed bind address. */
export type BindAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'fd'; fd: number };

const DEFAULT_PORT = 8000;

function parsePort(text: string, bind: string, setting: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new ConfigError(`invalid value "${bind}" for ${setting}: port "${text}" is not 0-65535`);
  }
  return port;
}

/** Parses one bind address the way Gunicorn does. */
export function parseBind(bind: string): BindAddress {
  return parseAddress(bind, '-b/--bind (bind)', DEFAULT_PORT);
}

/**
 * Parses an address written as a bind is (--metrics-bind, --statsd-host); `setting` names the setting in errors,
 * `defaultPort` is the port of an address without one.
 */
export function parseAddress(bind: string, setting: string, defaultPort: number): BindAddress {
  if (bind.startsWith('unix:')) {
    const socketPath = bind.replace(/^unix:(\/\/)?/, '');
    if (!socketPath) throw new ConfigError(`invalid value "${bind}" for ${setting}: empty unix socket path`);
    return { kind: 'unix', path: path.resolve(socketPath) };
  }
  if (bind.startsWith('fd://')) {
    const fd = Number(bind.slice(5));
    if (!/^\d+$/.test(bind.slice(5))) {
      throw new ConfigError(`invalid value "${bind}" for ${setting}: fd must be a number`);
    }
    return { kind: 'fd', fd };
  }
  const text = bind.replace(/^tcp:\/\//, '');
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    if (!net.isIPv6(v6[1])) throw new ConfigError(`invalid value "${bind}" for ${setting}: bad IPv6 address`);
    return { kind: 'tcp', host: v6[1], port: v6[2] === undefined ? defaultPort : parsePort(v6[2], bind, setting) };
  }
  if (text.split(':').length > 2) {
    throw new ConfigError(`invalid value "${bind}" for ${setting}: write IPv6 addresses as [ADDRESS]:PORT`);
  }
  const [host, port] = text.split(':');
  return { kind: 'tcp', host: (host || '0.0.0.0').toLowerCase(), port: port === undefined ? defaultPort : parsePort(port, bind, setting) };
}

