/** Node.js: binds with net's internal bind-only handle; serves node:http on the inherited fd. */
import module from 'node:module';
import net from 'node:net';
import util from 'node:util';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type http from 'node:http';
import { type FdListener, type ListenerPassing, type Runtime, SocketError, type TcpAddress, type UnixAddress } from './types.ts';

interface NodeServerHandle {
  fd: number;
  close(): void;
  getsockname(out: { port?: number }): number;
}

type CreateServerHandle = (address: string, port: number, addressType: number) => NodeServerHandle | number;

/** The channel to the TypeScript hooks' thread, once they are registered. */
let compilerPort: MessagePort | undefined;

/** Maps the listening fds into the worker's stdio as fds 3, 4, … (Node and Bun). */
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

function isSingleExecutable(): boolean {
  try {
    return (module.createRequire(import.meta.url)('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}

/** The Node.js runtime. */
export const nodeRuntime: Runtime = {
  name: 'node',
  version: process.versions.node,
  bindSocket(address: TcpAddress | UnixAddress) {
    // bind(2) only: the socket starts listening when the first worker calls listen(2) on its copy, and the
    // master never accepts on it.
    const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
    const handle = address.kind === 'unix'
      ? create(address.path, -1, -1)
      : create(address.host, address.port, address.family);
    if (typeof handle === 'number') {
      const code = util.getSystemErrorName(handle);
      throw new SocketError(code, `bind() failed: ${code}`);
    }
    const bound: { port?: number } = {};
    if (address.kind === 'tcp') handle.getsockname(bound);
    // libuv defers EADDRINUSE from bind() to listen(): an address in use shows up as a socket left unbound.
    if (address.kind === 'tcp' && address.port !== 0 && bound.port !== address.port) {
      handle.close();
      throw new SocketError('EADDRINUSE', 'bind() failed: EADDRINUSE');
    }
    return { fd: handle.fd, port: bound.port ?? 0, close: () => handle.close() };
  },
  passListeners: passAsStdio,
  workerCommand() {
    if (isSingleExecutable()) return { command: process.execPath, args: [] };
    return { command: process.execPath, args: [...process.execArgv, process.argv[1]] };
  },
  listenOnFd: acceptOnFd,
  async enableTypeScriptImports() {
    if (compilerPort) return;
    const hooks = import.meta.url.endsWith('.ts') ? './node-typescript-hooks.ts' : './node-typescript-hooks.js';
    const { port1, port2 } = new MessageChannel();
    compilerPort = port1;
    port1.unref();
    module.register(new URL(hooks, import.meta.url), { data: { port: port2 }, transferList: [port2] });
  },
  releaseTypeScriptCompiler() {
    compilerPort?.postMessage('stop');
  },
  setProcessTitle(title: string) {
    process.title = title;
  },
};
