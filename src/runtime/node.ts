/** Node.js: binds with net's internal bind-only handle; serves node:http on the inherited fd. */
import module from 'node:module';
import net from 'node:net';
import util from 'node:util';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { acceptOnFd, passAsStdio } from './_node-net.ts';
import { type HeldSocket, type Runtime, SocketError, type TcpAddress, type UnixAddress } from './types.ts';

interface NodeServerHandle {
  fd: number;
  close(): void;
  getsockname(out: { port?: number }): number;
}

type CreateServerHandle = (
  address: string, port: number, addressType: number, fd?: number, flags?: number,
) => NodeServerHandle | number;

/** libuv's bind flag for SO_REUSEPORT, which Node passes through since 22.12 (23.1 on the 23 line). */
const UV_TCP_REUSEPORT = 2;

/** Why reuse-port cannot run on this Node, or undefined when it can (`listen({ reusePort })`, Node >= 22.12). */
function reusePortUnsupported(): string | undefined {
  const [major, minor] = process.versions.node.split('.').map(Number);
  const supported = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  return supported ? undefined : `reuse-port needs Node >= 22.12 (this is Node ${process.versions.node}); ` +
    'use --no-reuse-port or a newer Node';
}

/**
 * bind(2) only, with net's internal bind-only handle: the socket starts listening when the first worker calls
 * listen(2) on its copy, and the master never accepts on it.
 */
function bindHandle(address: TcpAddress | UnixAddress, flags = 0): HeldSocket {
  const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
  const handle = address.kind === 'unix'
    ? create(address.path, -1, -1)
    : create(address.host, address.port, address.family, undefined, flags);
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
}

/** The channel to the TypeScript hooks' thread, once they are registered. */
let compilerPort: MessagePort | undefined;

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
  bindSocket: (address) => bindHandle(address),
  reservePort(address) {
    const unsupported = reusePortUnsupported();
    if (unsupported) throw new SocketError('ENOTSUP', unsupported);
    return bindHandle(address, UV_TCP_REUSEPORT);
  },
  engines: {
    inherit: 'node-http',
    reusePort: reusePortUnsupported() === undefined ? 'node-http' : { unsupported: reusePortUnsupported()! },
    reusePortByDefault: false,
  },
  passListeners: passAsStdio,
  workerCommand() {
    if (isSingleExecutable()) return { command: process.execPath, args: [] };
    return { command: process.execPath, args: [...process.execArgv, process.argv[1]] };
  },
  listenOnFd: acceptOnFd,
  nodeHttpAnswersAfterParse: false,
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
