/** Deno: binds through libc (Deno.dlopen) because Deno's listeners hide their fd; serves node:http on the fd. */
import {
  bindWithLibc, duplicateFdAbove, errnoName, isCloseOnExec, libcCalls, libcSymbolTable, type LibcSocketCalls,
  monotonicMicroseconds, sendUnixDatagram,
} from './libc-socket.ts';
import type http from 'node:http';
import net from 'node:net';
import { setProcessName } from './_proc-title.ts';
import type { FdListener, ProcessIdentity, Runtime } from './types.ts';

// deno-lint-ignore no-explicit-any
const Deno = (globalThis as any).Deno;

let libc: LibcSocketCalls | undefined;
const loadedLibc = () => (libc ??= openLibc());
/** Copies of inherited listener fds that would collide with the worker's IPC channel (fd 3). */
const movedFds = new Map<number, number>();
/** The worker's IPC channel is the first fd after stdio. */
const IPC_FD = 3;

function openLibc(): LibcSocketCalls {
  const table = libcSymbolTable('buffer', (parameters, result) => ({ parameters, result: result === 'buffer' ? 'pointer' : result }));
  const lib = Deno.dlopen('libc.so.6', table).symbols;
  return libcCalls(lib, () => new Deno.UnsafePointerView(lib.__errno_location()).getInt32());
}

/**
 * setgroups, setgid and setuid through libc: Deno's node:process has setuid and setgid but no setgroups, and a
 * worker must drop root's supplementary groups too. glibc makes every thread (Deno runs several) take the new ids.
 */
function dropWithLibc(identity: ProcessIdentity): void {
  const lib = Deno.dlopen('libc.so.6', {
    setgroups: { parameters: ['usize', 'buffer'], result: 'i32' },
    setgid: { parameters: ['u32'], result: 'i32' },
    setuid: { parameters: ['u32'], result: 'i32' },
    __errno_location: { parameters: [], result: 'pointer' },
  });
  const { setgroups, setgid, setuid, __errno_location } = lib.symbols;
  const check = (call: string, result: number) => {
    if (result === 0) return;
    const errno = new Deno.UnsafePointerView(__errno_location()).getInt32();
    throw new Error(`${call} failed: ${errnoName(errno)}`);
  };
  try {
    check(`setgroups(${identity.groups.join(',')})`, setgroups(BigInt(identity.groups.length), new Uint32Array(identity.groups)));
    check(`setgid(${identity.gid})`, setgid(identity.gid));
    check(`setuid(${identity.uid})`, setuid(identity.uid));
  } finally {
    lib.close();
  }
}

/**
 * node:http's own listen({fd}): on Deno, http.Servers fed by emit('connection') reset about half of the
 * keep-alive connections on their second request, so each fd gets its own listening http.Server.
 */
function listenHttpOnFd(server: http.Server, fd: number, backlog: number): Promise<FdListener> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd, backlog }, () => {
      server.off('error', reject);
      // net.Server's close stops accepting; http.Server's would also drop idle keep-alive connections at once,
      // which the worker's ConnectionTracker closes after a grace instead.
      resolve({ close: () => net.Server.prototype.close.call(server) });
    });
  });
}

function mainScriptPath(): string {
  return new URL(Deno.mainModule).pathname;
}

/** The Deno runtime. */
export const denoRuntime: Runtime = {
  name: 'deno',
  version: Deno.version.deno,
  bindSocket(address, backlog) {
    libc ??= openLibc();
    return bindWithLibc(libc, address, { backlog, inheritable: true });
  },
  reservePort(address) {
    libc ??= openLibc();
    return bindWithLibc(libc, address, { backlog: null, inheritable: false, reusePort: true });
  },
  engines: { inherit: 'node-http', reusePort: 'deno-serve', reusePortByDefault: false },
  // Deno's spawn clears O_NONBLOCK on the fds it maps into a child's stdio, which would make every other worker's
  // accept() block; unmapped non-CLOEXEC fds are inherited untouched at their own numbers instead. A CLOEXEC fd
  // (a reuse-port reservation handed to a new master on USR2) is passed as a non-CLOEXEC copy.
  passListeners(fds) {
    const workerFds = fds.map((fd) => {
      if (fd > IPC_FD && !isCloseOnExec(loadedLibc(), fd)) return fd;
      if (!movedFds.has(fd)) movedFds.set(fd, duplicateFdAbove(loadedLibc(), fd, IPC_FD + 1));
      return movedFds.get(fd)!;
    });
    return { stdio: [], workerFds };
  },
  workerCommand() {
    if (Deno.build.standalone) return { command: Deno.execPath(), args: [] };
    // --unstable-net: Deno.serve's reusePort is an unstable API in Deno 2.
    return { command: Deno.execPath(), args: ['run', '-A', '--unstable-net', mainScriptPath()] };
  },
  listenOnFd: listenHttpOnFd,
  nodeHttpAnswersAfterParse: true,
  // Probed on Deno 2.9.6: a client that closes its session after about 100 concurrent streams (its GOAWAY) aborts
  // the whole process on an nghttp2 assertion in 3 runs of 4, before any JavaScript runs (denoland/deno#36788).
  nodeHttp2Unsupported: 'Deno\'s node:http2 aborts the process on a client\'s GOAWAY after many streams ' +
    '(denoland/deno#36788); use --reuse-port, where Deno.serve speaks h2c itself',
  // Deno 2.9's node:tls (rustls) does not verify a client certificate against `ca` (probed: one the CA signed is
  // refused when required, and `authorized` stays false when optional); it accepts `ciphers` and ignores them.
  nodeTlsLimits: {
    clientCertificates: 'cannot verify client certificates: Deno 2.9\'s node:tls ignores --ca-certs for them',
    ciphers: 'cannot restrict the ciphers: Deno 2.9\'s node:tls ignores them',
  },
  async enableTypeScriptImports() {},
  releaseTypeScriptCompiler() {},
  dropPrivileges: dropWithLibc,
  // Deno's process.title rewrites the command line and the name as libuv does for Node (Deno 2.9).
  setProcessTitle({ title, name }) {
    process.title = title;
    setProcessName(name);
  },
  // node:fs on Deno closes its own resource ids only, not a raw fd.
  closeFd: (fd) => void loadedLibc().close(fd),
  // node:dgram cannot send to a unix socket, and Deno.listenDatagram needs --unstable-net: libc's sendto.
  notify: (socketPath, datagram) => sendUnixDatagram(loadedLibc(), socketPath, datagram),
  monotonicMicroseconds: () => monotonicMicroseconds(loadedLibc()),
};
