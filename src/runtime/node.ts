/** Node.js: binds with net's internal bind-only handle; serves node:http on the inherited fd. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import module from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import util from 'node:util';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { dropWithProcessCalls } from './_node-identity.ts';
import { acceptOnFd, passAsStdio } from './_node-net.ts';
import { setProcessName } from './_proc-title.ts';
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

/** True inside a Single Executable Application (`node:sea` exists since Node 20.12). */
function isSingleExecutable(): boolean {
  const sea = process.getBuiltinModule?.('node:sea') as { isSea?(): boolean } | undefined;
  return sea?.isSea?.() ?? false;
}

/** The TypeScript hooks' bundled source, which scripts/build.mjs inlines into dist/ (undefined in the sources). */
declare const TSGUNICORN_TYPESCRIPT_HOOKS: string | undefined;

/** The hooks module: a data: URL in dist/'s one-file builds, the source file beside this one otherwise. */
function typescriptHooksUrl(): string {
  return typeof TSGUNICORN_TYPESCRIPT_HOOKS === 'string'
    ? `data:text/javascript,${encodeURIComponent(TSGUNICORN_TYPESCRIPT_HOOKS)}`
    : new URL('./node-typescript-hooks.ts', import.meta.url).href;
}

/** esbuild's module URL, found from tsgunicorn's own location, else from the working directory (the app's project). */
function findEsbuild(): string | undefined {
  for (const from of [import.meta.url, pathToFileURL(path.join(process.cwd(), 'package.json')).href]) {
    try {
      return pathToFileURL(module.createRequire(from).resolve('esbuild')).href;
    } catch {
      // not installed there
    }
  }
  return undefined;
}

/** How long systemd-notify may wait for systemd to take a message (it waits for a BARRIER=1 reply by default). */
const SYSTEMD_NOTIFY_TIMEOUT_MS = 5000;

/**
 * sd_notify with systemd's `systemd-notify` (present wherever systemd is): Node has neither unix datagram
 * sockets (node:dgram is UDP only, libuv has no AF_UNIX SOCK_DGRAM) nor an FFI. The message comes from the
 * helper's pid, so the unit needs NotifyAccess=all (README, "systemd").
 */
function notifyWithSystemdNotify(socketPath: string, datagram: string): void {
  const result = spawnSync('systemd-notify', datagram.split('\n'), {
    env: { ...process.env, NOTIFY_SOCKET: socketPath },
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: SYSTEMD_NOTIFY_TIMEOUT_MS,
  });
  if (result.error) {
    const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? 'Node sends sd_notify messages with systemd-notify, which is not installed here' : result.error.message);
  }
  if (result.status !== 0) throw new Error(`systemd-notify: ${String(result.stderr).trim() || `exit status ${result.status}`}`);
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
  nodeTlsLimits: {},
  async enableTypeScriptImports() {
    if (compilerPort) return;
    const esbuild = isSingleExecutable() ? undefined : findEsbuild();
    if (!esbuild) {
      // Node's own type stripping (22.18 and later) is enough for a plain TypeScript module.
      if ((process.features as { typescript?: string }).typescript) return;
      throw new Error(isSingleExecutable()
        ? `this executable's Node ${process.versions.node} cannot import TypeScript: use a .js or .json file`
        : `Node ${process.versions.node} imports TypeScript with esbuild, which is not installed here (npm i esbuild), or use Node >= 22.18`);
    }
    const { port1, port2 } = new MessageChannel();
    compilerPort = port1;
    port1.unref();
    module.register(typescriptHooksUrl(), { data: { port: port2, esbuild }, transferList: [port2] });
  },
  async importFile(file, url) {
    try {
      return await import(url);
    } catch (error) {
      if (!isSingleExecutable() || (error as { code?: string }).code !== 'ERR_UNKNOWN_BUILTIN_MODULE') throw error;
      // An executable made by Node >= 25 imports built-in modules only; require() is its way to load a file
      // (an ES module too, on Node >= 22.12). A reload (HUP) gets the copy loaded first.
      return module.createRequire(process.execPath)(file);
    }
  },
  releaseTypeScriptCompiler() {
    compilerPort?.postMessage('stop');
  },
  dropPrivileges: dropWithProcessCalls,
  // libuv writes the title over the command line (cut to its length) and names the process with its first 15
  // bytes (`tsgunicorn: mas`): the name is set again after it.
  setProcessTitle({ title, name }) {
    process.title = title;
    setProcessName(name);
  },
  closeFd: (fd) => fs.closeSync(fd),
  notify: notifyWithSystemdNotify,
  // libuv's hrtime is CLOCK_MONOTONIC.
  monotonicMicroseconds: () => process.hrtime.bigint() / 1000n,
};
