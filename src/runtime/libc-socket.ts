/**
 * Creates a listening socket with libc's socket/bind/listen through a runtime's FFI (Deno, Bun), for the
 * runtimes whose own listeners either accept by themselves or hide their fd.
 */
import { isIPv6 } from 'node:net';
import { SocketError, type HeldSocket, type TcpAddress, type UnixAddress } from './types.ts';

/** The libc calls this module needs, bound by a runtime's FFI; pointers are passed as byte arrays. */
export interface LibcSocketCalls {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, length: number): number;
  bind(fd: number, address: Uint8Array, length: number): number;
  listen(fd: number, backlog: number): number;
  close(fd: number): number;
  getsockname(fd: number, address: Uint8Array, length: Uint8Array): number;
  fcntl(fd: number, command: number, argument: number): number;
  sendto(fd: number, buffer: Uint8Array, length: number, flags: number, address: Uint8Array, addressLength: number): number;
  clock_gettime(clock: number, timespec: Uint8Array): number;
  /** The calling thread's errno after a failed call. */
  errno(): number;
}

/** The libc function signatures, as names and argument kinds, for building the FFI binding. */
export const LIBC_SOCKET_SYMBOLS = {
  socket: ['i32', 'i32', 'i32'],
  setsockopt: ['i32', 'i32', 'i32', 'pointer', 'u32'],
  bind: ['i32', 'pointer', 'u32'],
  listen: ['i32', 'i32'],
  close: ['i32'],
  getsockname: ['i32', 'pointer', 'pointer'],
  fcntl: ['i32', 'i32', 'i32'],
  // sendto's size_t length is passed as u64; its ssize_t result is read as i32 like the others' (the low half
  // of the return register holds -1 or the byte count of a datagram far below 2 GiB).
  sendto: ['i32', 'pointer', 'u64', 'i32', 'pointer', 'u32'],
  clock_gettime: ['i32', 'pointer'],
} as const;

/**
 * The symbol table for a runtime's dlopen: every libc call (and `__errno_location`) described by `describe`,
 * given the argument kinds with pointers spelled the way that FFI spells them.
 */
export function libcSymbolTable<T>(pointer: string, describe: (args: string[], result: string) => T): Record<string, T> {
  const table: Record<string, T> = { __errno_location: describe([], pointer) };
  for (const [name, args] of Object.entries(LIBC_SOCKET_SYMBOLS)) {
    table[name] = describe(args.map((arg) => (arg === 'pointer' ? pointer : arg)), 'i32');
  }
  return table;
}

/** Picks the libc calls out of a dlopen'ed library; `errno` reads errno through the runtime's pointer API. */
export function libcCalls(symbols: Record<string, unknown>, errno: () => number): LibcSocketCalls {
  const calls = Object.fromEntries(Object.keys(LIBC_SOCKET_SYMBOLS).map((name) => [name, symbols[name]]));
  return { ...calls, errno } as unknown as LibcSocketCalls;
}

const AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
const SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
const F_DUPFD = 0, F_GETFD = 1, FD_CLOEXEC = 1;
const MSG_NOSIGNAL = 0x4000, CLOCK_MONOTONIC = 1;
const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_REUSEPORT = 15, IPPROTO_TCP = 6, TCP_NODELAY = 1;
const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 20: 'ENOTDIR', 22: 'EINVAL', 36: 'ENAMETOOLONG', 97: 'EAFNOSUPPORT',
  91: 'EPROTOTYPE', 98: 'EADDRINUSE', 99: 'EADDRNOTAVAIL', 111: 'ECONNREFUSED',
};
/** errno's symbolic name (EPERM, EADDRINUSE, …) for messages and retry decisions. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

function ipv6Bytes(host: string): number[] {
  const [head, tail = ''] = host.includes('::') ? host.split('::') : [host, ''];
  const groups = (text: string) => (text ? text.split(':') : []).flatMap((group) => {
    if (group.includes('.')) {
      const [a, b, c, d] = group.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    }
    return [parseInt(group, 16)];
  });
  const left = groups(head), right = groups(tail);
  const all = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  return all.flatMap((group) => [group >> 8, group & 0xff]);
}

/** Duplicates `fd` onto the lowest free number >= `minimum` (not CLOEXEC, so children inherit it). */
export function duplicateFdAbove(libc: LibcSocketCalls, fd: number, minimum: number): number {
  const copy = libc.fcntl(fd, F_DUPFD, minimum);
  if (copy < 0) throw new SocketError('EBADF', `cannot duplicate fd ${fd}: errno ${libc.errno()}`);
  return copy;
}

/** Whether `fd` is closed on exec (then a child does not inherit it at its number). */
export function isCloseOnExec(libc: LibcSocketCalls, fd: number): boolean {
  return (libc.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC) !== 0;
}

/**
 * Sends one datagram to a unix datagram socket: a path, or `@name` in the abstract namespace (sd_notify's
 * $NOTIFY_SOCKET). Throws a SocketError when the socket is missing or refuses it.
 */
export function sendUnixDatagram(libc: LibcSocketCalls, socketPath: string, datagram: string): void {
  const abstract = socketPath.startsWith('@');
  const name = new TextEncoder().encode(abstract ? socketPath.slice(1) : socketPath);
  if (name.length > 107) throw new SocketError('ENAMETOOLONG', `unix socket path too long: ${socketPath}`);
  // An abstract name starts with a NUL byte and is exactly as long as the address length says (no trailing NUL).
  const address = new Uint8Array(2 + (abstract ? 1 : 0) + name.length + (abstract ? 0 : 1));
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, abstract ? 3 : 2);
  const bytes = new TextEncoder().encode(datagram);
  const fail = (call: string): never => {
    const code = errnoName(libc.errno());
    throw new SocketError(code, `${call} failed: ${code}`);
  };
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket()');
  try {
    if (libc.sendto(fd, bytes, bytes.length, MSG_NOSIGNAL, address, address.length) < 0) fail(`sendto(${socketPath})`);
  } finally {
    libc.close(fd);
  }
}

/** CLOCK_MONOTONIC in microseconds, from libc (Deno's and Bun's process.hrtime count from their own start). */
export function monotonicMicroseconds(libc: LibcSocketCalls): bigint {
  const timespec = new Uint8Array(16);
  libc.clock_gettime(CLOCK_MONOTONIC, timespec);
  const view = new DataView(timespec.buffer);
  return view.getBigInt64(0, true) * 1_000_000n + view.getBigInt64(8, true) / 1000n;
}

/** Encodes a sockaddr_in, sockaddr_in6 or sockaddr_un for bind(2). */
export function encodeSockaddr(address: TcpAddress | UnixAddress): Uint8Array {
  if (address.kind === 'unix') {
    const pathBytes = new TextEncoder().encode(address.path);
    if (pathBytes.length > 107) throw new SocketError('ENAMETOOLONG', `unix socket path too long: ${address.path}`);
    const sa = new Uint8Array(110);
    new DataView(sa.buffer).setUint16(0, AF_UNIX, true);
    sa.set(pathBytes, 2);
    return sa;
  }
  const v6 = address.family === 6 || isIPv6(address.host);
  const sa = new Uint8Array(v6 ? 28 : 16);
  const view = new DataView(sa.buffer);
  view.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  view.setUint16(2, address.port, false);
  if (v6) sa.set(ipv6Bytes(address.host), 8);
  else sa.set(address.host.split('.').map(Number), 4);
  return sa;
}

/** How bindWithLibc sets a socket up. */
export interface LibcBindOptions {
  /** Not CLOEXEC, so that children inherit the socket at the same fd number. */
  inheritable: boolean;
  /** listen(2) with this backlog; null binds only (a reuse-port reservation takes no connections). */
  backlog: number | null;
  /** Sets SO_REUSEPORT, so that workers can bind and listen on the same address. */
  reusePort?: boolean;
}

/**
 * socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind (+ listen). A socket that is not inheritable only reaches workers
 * mapped into their stdio.
 */
export function bindWithLibc(libc: LibcSocketCalls, address: TcpAddress | UnixAddress, options: LibcBindOptions): HeldSocket {
  const { inheritable, backlog } = options;
  const domain = address.kind === 'unix' ? AF_UNIX : address.family === 6 ? AF_INET6 : AF_INET;
  const fail = (call: string, fd: number): never => {
    const errno = libc.errno();
    if (fd >= 0) libc.close(fd);
    const code = errnoName(errno);
    throw new SocketError(code, `${call}() failed: ${code}`);
  };
  const fd = libc.socket(domain, SOCK_STREAM | SOCK_NONBLOCK | (inheritable ? 0 : SOCK_CLOEXEC), 0);
  if (fd < 0) fail('socket', fd);
  const one = new Uint8Array(new Int32Array([1]).buffer);
  if (address.kind === 'tcp') {
    libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
    libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4);
    if (options.reusePort && libc.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4) !== 0) fail('setsockopt', fd);
  }
  const sockaddr = encodeSockaddr(address);
  if (libc.bind(fd, sockaddr, sockaddr.length) !== 0) fail('bind', fd);
  if (backlog !== null && libc.listen(fd, backlog) !== 0) fail('listen', fd);
  let port = 0;
  if (address.kind === 'tcp') {
    const bound = new Uint8Array(28);
    libc.getsockname(fd, bound, new Uint8Array(new Uint32Array([bound.length]).buffer));
    port = new DataView(bound.buffer).getUint16(2, false);
  }
  let open = true;
  return {
    fd,
    port,
    close() {
      if (open) libc.close(fd);
      open = false;
    },
  };
}
