/**
 * Listening sockets: parses bind addresses (HOST:PORT, [IPv6]:PORT, unix:PATH, fd://N) and creates the sockets
 * the master holds for its workers, retrying while the address is in use.
 */
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConfigError } from './errors.ts';
import type { Logger } from './glogging.ts';
import { type Runtime, SocketError } from './runtime/index.ts';

/** A parsed bind address. */
export type BindAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'fd'; fd: number };

/** A socket the master holds and passes to every worker. */
export interface Listener {
  /** The bind text it came from, to match listeners across reloads. */
  bind: string;
  /** Where it listens, as logged: http://127.0.0.1:8000, unix:/run/app.sock, fd://3. */
  url: string;
  fd: number;
  close(): void;
}

const DEFAULT_PORT = 8000;

function parsePort(text: string, bind: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new ConfigError(`invalid value "${bind}" for -b/--bind (bind): port "${text}" is not 0-65535`);
  }
  return port;
}

/** Parses one bind address the way Gunicorn does. */
export function parseBind(bind: string): BindAddress {
  if (bind.startsWith('unix:')) {
    const socketPath = bind.replace(/^unix:(\/\/)?/, '');
    if (!socketPath) throw new ConfigError(`invalid value "${bind}" for -b/--bind (bind): empty unix socket path`);
    return { kind: 'unix', path: path.resolve(socketPath) };
  }
  if (bind.startsWith('fd://')) {
    const fd = Number(bind.slice(5));
    if (!/^\d+$/.test(bind.slice(5))) {
      throw new ConfigError(`invalid value "${bind}" for -b/--bind (bind): fd must be a number`);
    }
    return { kind: 'fd', fd };
  }
  const text = bind.replace(/^tcp:\/\//, '');
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (v6) {
    if (!net.isIPv6(v6[1])) throw new ConfigError(`invalid value "${bind}" for -b/--bind (bind): bad IPv6 address`);
    return { kind: 'tcp', host: v6[1], port: v6[2] === undefined ? DEFAULT_PORT : parsePort(v6[2], bind) };
  }
  if (text.split(':').length > 2) {
    throw new ConfigError(`invalid value "${bind}" for -b/--bind (bind): write IPv6 addresses as [ADDRESS]:PORT`);
  }
  const [host, port] = text.split(':');
  return { kind: 'tcp', host: (host || '0.0.0.0').toLowerCase(), port: port === undefined ? DEFAULT_PORT : parsePort(port, bind) };
}

async function openListener(runtime: Runtime, bind: string, backlog: number): Promise<Listener> {
  const address = parseBind(bind);
  if (address.kind === 'fd') return { bind, url: bind, fd: address.fd, close() {} };
  if (address.kind === 'unix') {
    if (fs.existsSync(address.path)) {
      if (!fs.statSync(address.path).isSocket()) {
        throw new SocketError('EEXIST', `${address.path} exists and is not a socket`);
      }
      fs.unlinkSync(address.path);
    }
    const held = runtime.bindSocket(address, backlog);
    return {
      bind, url: `unix:${address.path}`, fd: held.fd,
      close() {
        held.close();
        fs.rmSync(address.path, { force: true });
      },
    };
  }
  const family = net.isIPv6(address.host) ? 6 : 4;
  const host = net.isIP(address.host) ? address.host : (await dns.lookup(address.host, { family: 4 })).address;
  const held = runtime.bindSocket({ kind: 'tcp', host, port: address.port, family }, backlog);
  const shownHost = family === 6 ? `[${host}]` : host;
  return { bind, url: `http://${shownHost}:${held.port}`, fd: held.fd, close: () => held.close() };
}

/** Options for creating listeners. */
export interface ListenOptions {
  runtime: Runtime;
  backlog: number;
  logger: Logger;
  /** Attempts per address while it is in use (Gunicorn: 5, one second apart). */
  attempts?: number;
}

/** Opens a listener for every bind address; throws a ConfigError (exit status 1) if one stays unavailable. */
export async function createListeners(binds: string[], options: ListenOptions): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const attempts = options.attempts ?? 5;
  for (const bind of binds) {
    for (let attempt = 1; ; attempt++) {
      try {
        listeners.push(await openListener(options.runtime, bind, options.backlog));
        break;
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        const code = (error as SocketError).code;
        const reason = code === 'EADDRINUSE' ? 'Connection in use' : `Cannot bind (${(error as Error).message})`;
        options.logger.error(`${reason}: ${bind}`);
        if (attempt >= attempts || code !== 'EADDRINUSE') {
          for (const listener of listeners) listener.close();
          throw new ConfigError(`Can't connect to ${bind}: ${(error as Error).message}`);
        }
        options.logger.error('Retrying in 1 second.');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }
  return listeners;
}
