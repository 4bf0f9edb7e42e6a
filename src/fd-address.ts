/**
 * The local address of a socket fd systemd passed (socket activation), read from /proc (Linux) so that every
 * runtime can tell, Node included (which has no getsockname for an fd it did not open).
 */
import fs from 'node:fs';
import type { TcpAddress } from './runtime/index.ts';

/** An inherited socket as /proc shows it. */
export type FdSocket = { kind: 'tcp'; address: TcpAddress } | { kind: 'unix'; path: string };

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(1);
  } catch {
    return [];
  }
}

/** /proc prints each 32-bit word of an address in host byte order (little-endian on every Linux we run on). */
function hostOrderBytes(hex: string): number[] {
  const bytes: number[] = [];
  for (let word = 0; word < hex.length; word += 8) {
    for (let at = 6; at >= 0; at -= 2) bytes.push(parseInt(hex.slice(word + at, word + at + 2), 16));
  }
  return bytes;
}

function ipText(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  // The WHATWG URL parser writes an IPv6 address in its shortest form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function findTcp(inode: string): FdSocket | undefined {
  for (const [file, family] of [['/proc/net/tcp', 4], ['/proc/net/tcp6', 6]] as const) {
    for (const line of readLines(file)) {
      const columns = line.trim().split(/\s+/);
      if (columns[9] !== inode) continue;
      const [hexHost, hexPort] = columns[1].split(':');
      const address: TcpAddress = { kind: 'tcp', host: ipText(hostOrderBytes(hexHost)), port: parseInt(hexPort, 16), family };
      return { kind: 'tcp', address };
    }
  }
  return undefined;
}

function findUnix(inode: string): FdSocket | undefined {
  for (const line of readLines('/proc/net/unix')) {
    const columns = line.trim().split(/\s+/);
    if (columns[6] !== inode) continue;
    // An unnamed socket (a socketpair) has no address to tell.
    return columns[7] ? { kind: 'unix', path: columns[7] } : undefined;
  }
  return undefined;
}

/**
 * The socket behind `fd`, or undefined where /proc cannot tell: not Linux, not a TCP or unix socket, an unnamed
 * unix socket, a TCP socket that is bound but not listening (/proc/net/tcp lists neither).
 */
export function describeFd(fd: number): FdSocket | undefined {
  let target: string;
  try {
    target = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
  const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
  return inode ? findTcp(inode) ?? findUnix(inode) : undefined;
}
