/** node:net helpers that the Node and Bun runtimes share (both map listeners into stdio and accept with node:net). */
import type http from 'node:http';
import net from 'node:net';
import type { FdListener, ListenerPassing } from './types.ts';

/** Maps the listening fds into the worker's stdio as fds 3, 4, … */
export function passAsStdio(fds: number[]): ListenerPassing {
  return { stdio: fds, workerFds: fds.map((_, index) => 3 + index) };
}

/**
 * Accepts connections on an fd with node:net and hands them to the http.Server: one server for any number of
 * fds, and the server itself never listens, so closing an fd never closes connections behind the worker's back.
 */
export function acceptOnFd(server: http.Server, fd: number): Promise<FdListener> {
  return new Promise((resolve, reject) => {
    const acceptor = net.createServer((socket) => server.emit('connection', socket));
    acceptor.once('error', reject);
    acceptor.listen({ fd }, () => {
      acceptor.off('error', reject);
      resolve({ close: () => acceptor.close() });
    });
  });
}
