/**
 * Listening sockets: creates the sockets the master holds for its workers from the bind addresses, retrying
 * while an address is in use. In reuse-port mode a TCP bind is a reservation: the master holds the port with a
 * socket that never listens, and every worker opens its own SO_REUSEPORT socket on it.
 */
import fs from 'node:fs';
import net from 'node:net';
import { parseBind } from './address.ts';
import { ConfigError } from './errors.ts';
import { describeFd } from './fd-address.ts';
import type { Logger } from './glogging.ts';
import { type Runtime, SocketError, type TcpAddress } from './runtime/index.ts';

/** A socket the master holds for its workers. */
export interface Listener {
  /** The bind text it came from, to match listeners across reloads. */
  bind: string;
  /** Where it listens, as logged: http://127.0.0.1:8000 (https:// with TLS), unix:/run/app.sock, fd://3. */
  url: string;
  /** The socket's fd: workers inherit it, unless `reusePort` is set (then it is the master's reservation). */
  fd: number;
  /** The address each worker binds with SO_REUSEPORT itself (its port resolved), in reuse-port mode. */
  reusePort?: TcpAddress;
  /**
   * Closes the master's socket and removes its unix socket file, if it has one, unless `keepFile` (the other
   * master of a USR2 upgrade still serves on it). A systemd socket's file is never removed.
   */
  close(keepFile?: boolean): void;
}

/** Resolves a host name (rare in binds: node:dns is only loaded for it). */
async function lookupIPv4(host: string): Promise<string> {
  const dns = await import('node:dns/promises');
  return (await dns.lookup(host, { family: 4 })).address;
}

/** How a TCP listener is logged: http://127.0.0.1:8000, http://[::1]:8000, https://… with TLS. */
function tcpUrl(address: TcpAddress, port = address.port, secure = false): string {
  return `${secure ? 'https' : 'http'}://${address.family === 6 ? `[${address.host}]` : address.host}:${port}`;
}

async function openListener(runtime: Runtime, bind: string, backlog: number, reusePort: boolean, secure: boolean): Promise<Listener> {
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
      close(keepFile = false) {
        // Node's libuv removes a unix socket's file when it closes the handle that bound it: the socket stays open
        // until this master exits (the other master of the upgrade holds it anyway).
        if (keepFile) return;
        held.close();
        fs.rmSync(address.path, { force: true });
      },
    };
  }
  const family = net.isIPv6(address.host) ? 6 : 4;
  const host = net.isIP(address.host) ? address.host : await lookupIPv4(address.host);
  const tcp: TcpAddress = { kind: 'tcp', host, port: address.port, family };
  const held = reusePort ? runtime.reservePort(tcp) : runtime.bindSocket(tcp, backlog);
  return {
    bind, url: tcpUrl(tcp, held.port, secure), fd: held.fd, close: () => held.close(),
    ...(reusePort ? { reusePort: { ...tcp, port: held.port } } : {}),
  };
}

/** What a listener inherited from another process (an old master on USR2) is: its Listener minus fd and close. */
export type ListenerDescription = Pick<Listener, 'bind' | 'url' | 'reusePort'>;

/**
 * A listener on an fd this process inherited. Closing it closes the fd; the socket file of a `unix:` bind (an
 * old master's, handed over by USR2) is removed as the master's own would be, a systemd socket's never.
 */
export function inheritedListener(runtime: Runtime, fd: number, description: ListenerDescription): Listener {
  let open = true;
  const socketFile = description.bind.startsWith('unix:') ? description.url.replace(/^unix:/, '') : undefined;
  return {
    ...description,
    fd,
    close(keepFile = false) {
      if (open) runtime.closeFd(fd);
      open = false;
      if (socketFile && !keepFile) fs.rmSync(socketFile, { force: true });
    },
  };
}

/**
 * A listener on a socket systemd passed (socket activation): logged with its real address where /proc shows it
 * (https:// when `secure`), as `fd://N` otherwise.
 */
export function activatedListener(runtime: Runtime, fd: number, secure = false): Listener {
  const socket = describeFd(fd);
  const url = socket?.kind === 'tcp' ? tcpUrl(socket.address, socket.address.port, secure) : socket?.kind === 'unix' ? `unix:${socket.path}` : `fd://${fd}`;
  return inheritedListener(runtime, fd, { bind: `fd://${fd}`, url });
}

const MIGRATE_SYSCTL = '/proc/sys/net/ipv4/tcp_migrate_req';

/**
 * Whether the kernel moves the connections queued on a closing SO_REUSEPORT socket to another socket of its
 * group (net.ipv4.tcp_migrate_req=1) instead of resetting them; false where it cannot be read (not Linux).
 */
export function kernelMigratesQueuedConnections(): boolean {
  try {
    return fs.readFileSync(MIGRATE_SYSCTL, 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** The warning for reuse-port mode when the kernel resets the connections queued on a worker's closing socket. */
export const RESETS_ON_RESTART_WARNING = 'net.ipv4.tcp_migrate_req is 0: in reuse-port mode the connections queued ' +
  'on a worker\'s socket when it stops (HUP, TTOU, max-requests) are reset; `sysctl -w net.ipv4.tcp_migrate_req=1` ' +
  '(as root, for the whole network namespace) makes the kernel hand them to another worker';

/** Options for creating listeners. */
export interface ListenOptions {
  runtime: Runtime;
  backlog: number;
  logger: Logger;
  /** Attempts per address while it is in use (Gunicorn: 5, one second apart). */
  attempts?: number;
  /** TCP binds become reuse-port reservations. */
  reusePort: boolean;
  /** The workers serve TLS: TCP listeners are logged as https://. */
  secure?: boolean;
}

/** Opens a listener for every bind address; throws a ConfigError (exit status 1) if one stays unavailable. */
export async function createListeners(binds: string[], options: ListenOptions): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const attempts = options.attempts ?? 5;
  for (const bind of binds) {
    for (let attempt = 1; ; attempt++) {
      try {
        listeners.push(await openListener(options.runtime, bind, options.backlog, options.reusePort, options.secure ?? false));
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
