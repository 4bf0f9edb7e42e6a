/**
 * Bun: binds through libc (bun:ffi) because Bun's own listeners accept by themselves; node:http ignores an fd
 * on Bun, so connections are accepted with node:net and handed to the http.Server.
 */
import { maxHeadBytes, requestLimitsOf } from '../http/limits.ts';
import { dropWithProcessCalls } from './_node-identity.ts';
import { acceptOnFd, passAsStdio } from './_node-net.ts';
import fs from 'node:fs';
import { rewriteCommandLine, setProcessName } from './_proc-title.ts';
import {
  bindWithLibc, libcCalls, libcSymbolTable, type LibcSocketCalls, monotonicMicroseconds, sendUnixDatagram,
} from './libc-socket.ts';
import type { Runtime } from './types.ts';

let libc: LibcSocketCalls | undefined;

async function openLibc(): Promise<LibcSocketCalls> {
  const ffi = await import('bun:ffi');
  const lib = ffi.dlopen('libc.so.6', libcSymbolTable('ptr', (args, returns) => ({ args, returns }))).symbols;
  return libcCalls(lib, () => ffi.read.i32(lib.__errno_location(), 0));
}

function loadedLibc(): LibcSocketCalls {
  if (!libc) throw new Error('bun runtime: libc not loaded');
  return libc;
}

const isCompiled = () => (process.argv[1] ?? '').startsWith('/$bunfs/');

/** The Bun runtime. */
export const bunRuntime: Runtime = {
  name: 'bun',
  // deno-lint-ignore no-explicit-any
  version: (process.versions as any).bun,
  bindSocket(address, backlog) {
    return bindWithLibc(loadedLibc(), address, { backlog, inheritable: false });
  },
  reservePort(address) {
    return bindWithLibc(loadedLibc(), address, { backlog: null, inheritable: false, reusePort: true });
  },
  engines: { inherit: 'bun-listen', reusePort: 'bun-serve', reusePortByDefault: true },
  // Bun.spawn does not inherit unmapped fds.
  passListeners: passAsStdio,
  workerCommand() {
    if (isCompiled()) return { command: process.execPath, args: [] };
    return { command: process.execPath, args: [...process.execArgv, process.argv[1]] };
  },
  // Bun.serve's parser answers 431 to a head over Bun's --max-http-header-size (16 KiB) before tsgunicorn sees
  // the request: workers get the cap bun-listen's parser has, so that a head the limits allow is served on both
  // engines. Through BUN_OPTIONS, which Bun reads as flags before its own arguments.
  workerEnv(settings) {
    const flag = `--max-http-header-size=${maxHeadBytes(requestLimitsOf(settings))}`;
    return { BUN_OPTIONS: process.env.BUN_OPTIONS ? `${process.env.BUN_OPTIONS} ${flag}` : flag };
  },
  listenOnFd: acceptOnFd,
  nodeHttpAnswersAfterParse: false,
  // Bun's engines serve TLS themselves (bun-listen, bun-serve); its node-http engine is not used.
  nodeTlsLimits: {},
  async enableTypeScriptImports() {},
  releaseTypeScriptCompiler() {},
  dropPrivileges: dropWithProcessCalls,
  // Bun's process.title only changes what process.title reads back: ps would still show `bun cli.ts ...`.
  setProcessTitle({ title, name }) {
    rewriteCommandLine(title);
    setProcessName(name);
  },
  closeFd: (fd) => fs.closeSync(fd),
  // node:dgram cannot send to a unix socket: libc's sendto through bun:ffi.
  notify: (socketPath, datagram) => sendUnixDatagram(loadedLibc(), socketPath, datagram),
  monotonicMicroseconds: () => monotonicMicroseconds(loadedLibc()),
};

/** Loads bun:ffi ahead of the first bind (bindSocket itself is synchronous). */
export async function prepareBunRuntime(): Promise<void> {
  libc ??= await openLibc();
}
