/**
 * The runtime abstraction: everything that differs between Node, Deno and Bun, behind one interface.
 * One file per runtime implements it; nothing outside src/runtime/ asks which runtime it runs on.
 */
import type http from 'node:http';
import type { Settings } from '../settings.ts';
import type { TlsLimits } from '../tls-options.ts';

/** A TCP address to bind, already resolved to a numeric IP. */
export interface TcpAddress {
  kind: 'tcp';
  host: string;
  port: number;
  family: 4 | 6;
}

/** A unix domain socket path to bind. */
export interface UnixAddress {
  kind: 'unix';
  path: string;
}

/** A listening socket the master holds open (and never accepts on) so that workers can inherit it. */
export interface HeldSocket {
  fd: number;
  /** The TCP port actually bound (the kernel's pick when port 0 was asked for); 0 for unix sockets. */
  port: number;
  close(): void;
}

/** A worker's listener on an inherited fd; close() stops accepting on it (the master keeps the socket). */
export interface FdListener {
  close(): void;
}

/** How to start a new worker process of the program that is running now. */
export interface WorkerCommand {
  command: string;
  args: string[];
}

/** How the listening fds reach a worker: extra stdio entries for spawn(), and the fd numbers the worker sees. */
export interface ListenerPassing {
  stdio: number[];
  workerFds: number[];
}

/** A process's user, group and supplementary groups (numeric ids), as a worker drops to them (--user, --group). */
export interface ProcessIdentity {
  uid: number;
  gid: number;
  groups: number[];
}

/** A serving engine's name; `src/workers/` has one file per engine. */
export type EngineName = 'node-http' | 'deno-serve' | 'bun-serve' | 'bun-listen';

/** Which serving engine a worker of this runtime uses for each way it gets its sockets. */
export interface RuntimeEngines {
  /** Serves the listening fds the worker inherits from the master. */
  inherit: EngineName;
  /** Serves the SO_REUSEPORT sockets the worker opens itself, or says why this runtime cannot. */
  reusePort: EngineName | { unsupported: string };
  /**
   * Whether reuse-port is this runtime's default where the kernel migrates a closing socket's queued
   * connections (net.ipv4.tcp_migrate_req=1): true where it is faster and its engine drains without losing
   * requests (README, "Runtimes and engines", says why).
   */
  reusePortByDefault: boolean;
}

/** What `ps` shows of a process: its title (in place of the command line) and its short name (`comm`). */
export interface ProcessTitle {
  /** Shown in place of the command line (`ps -o args`, /proc/PID/cmdline), cut to the length of the original one. */
  title: string;
  /** The kernel's name of the process (`ps -o comm`, /proc/PID/comm): at most 15 bytes. */
  name: string;
}

/** One runtime's implementation of what the arbiter and worker need from it. */
export interface Runtime {
  readonly name: 'node' | 'deno' | 'bun';
  readonly version: string;
  /** Binds (and where the runtime allows, listens on) a socket without ever accepting connections on it. */
  bindSocket(address: TcpAddress | UnixAddress, backlog: number): HeldSocket;
  /**
   * Binds a SO_REUSEPORT socket that never listens: it holds the port (and resolves port 0) while the workers
   * bind and listen on the same address, and takes no share of the connections.
   */
  reservePort(address: TcpAddress): HeldSocket;
  /** The serving engines this runtime offers. */
  readonly engines: RuntimeEngines;
  /** How to hand the master's listening fds to a worker at spawn. */
  passListeners(fds: number[]): ListenerPassing;
  /**
   * The command that starts a worker: the same runtime and entry script, or the compiled binary itself. A USR2
   * upgrade starts the new master with it too, followed by the master's own arguments.
   */
  workerCommand(): WorkerCommand;
  /** Environment variables a worker starts with besides the master's own, from the worker's settings (none if absent). */
  workerEnv?(settings: Settings): Record<string, string>;
  /** Makes an http.Server (a new one per fd) serve the connections accepted on an inherited listening fd (node-http engine). */
  listenOnFd(server: http.Server, fd: number, backlog: number): Promise<FdListener>;
  /**
   * Whether the node-http engine writes an answer the handler gave at once from a microtask, after node:http's
   * parser has returned, instead of from inside it: on Deno that takes about 13% less CPU per request (measured
   * on a hello-world app), on Node 20 about 4% more.
   */
  readonly nodeHttpAnswersAfterParse: boolean;
  /**
   * Why node:http2 cannot serve HTTP/2 in the node-http engine here (h2c), or absent where it can (README,
   * "HTTP/2").
   */
  readonly nodeHttp2Unsupported?: string;
  /** What the node-http engine cannot do of TLS with this runtime's node:tls (README, "TLS"). */
  readonly nodeTlsLimits: TlsLimits;
  /** Lets `import()` load TypeScript modules (apps, config files) where the runtime cannot by itself. */
  enableTypeScriptImports(): Promise<void>;
  /** Imports a module file where `import(url)` cannot (Node's executables); absent where import() always can. */
  importFile?(file: string, url: string): Promise<Record<string, unknown>>;
  /** Lets go of the TypeScript compiler's resources (esbuild's service process on Node) once the app is loaded. */
  releaseTypeScriptCompiler(): void;
  /**
   * Becomes `identity` for good (setgroups, setgid, then setuid, in every thread): a worker does it before it
   * loads the app. Throws an Error naming the call that failed.
   */
  dropPrivileges(identity: ProcessIdentity): void;
  /** Sets the title and name `ps` shows (README, "Runtimes and engines": process titles); never throws. */
  setProcessTitle(title: ProcessTitle): void;
  /** Closes an fd this process inherited (a listener from systemd or from the old master of a USR2 upgrade). */
  closeFd(fd: number): void;
  /**
   * Sends an sd_notify datagram (`READY=1\nSTATUS=…`) to the unix datagram socket `socketPath` (a path, or
   * `@name` in the abstract namespace); throws an Error saying why when it cannot.
   */
  notify(socketPath: string, datagram: string): void;
  /** CLOCK_MONOTONIC in microseconds (sd_notify's MONOTONIC_USEC). */
  monotonicMicroseconds(): bigint;
}

/** A bind or listen failure, with the errno name (EADDRINUSE, EACCES, …) for retry decisions and messages. */
export class SocketError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
