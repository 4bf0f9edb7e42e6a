/**
 * systemd integration: socket activation (the listening sockets systemd passes as fds 3, 4, … with LISTEN_FDS,
 * LISTEN_PID and LISTEN_FDNAMES) and sd_notify (READY=1, RELOADING=1, STOPPING=1, STATUS=, MAINPID= datagrams
 * and WATCHDOG=1 to $NOTIFY_SOCKET). The datagram itself is sent by the runtime (`Runtime.notify`).
 */
import type { Logger } from './glogging.ts';
import type { Runtime } from './runtime/index.ts';

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

/** A socket systemd passed. */
export interface ActivatedSocket {
  fd: number;
  /** Its FileDescriptorName= (LISTEN_FDNAMES), or undefined. */
  name?: string;
}

/**
 * The sockets systemd passed to this process, or undefined when it passed none (LISTEN_PID names another
 * process: the variables were meant for a parent). Removes the LISTEN_* variables from `env`, so that workers
 * and a USR2 child do not take them for theirs.
 */
export function takeActivatedSockets(env: Record<string, string | undefined>, pid = process.pid): ActivatedSocket[] | undefined {
  const { LISTEN_PID: listenPid, LISTEN_FDS: listenFds, LISTEN_FDNAMES: names } = env;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  const count = Number(listenFds);
  if (Number(listenPid) !== pid || !Number.isInteger(count) || count <= 0) return undefined;
  const nameList = names?.split(':') ?? [];
  return Array.from({ length: count }, (_, index) => ({ fd: LISTEN_FDS_START + index, name: nameList[index] || undefined }));
}

/**
 * systemd's notification socket ($NOTIFY_SOCKET), or undefined. Removes it from `env`: workers are not systemd's
 * to talk to (a USR2 child gets it back explicitly).
 */
export function takeNotifySocket(env: Record<string, string | undefined>): string | undefined {
  const socket = env.NOTIFY_SOCKET;
  delete env.NOTIFY_SOCKET;
  return socket || undefined;
}

/**
 * Tells systemd about the master's state when $NOTIFY_SOCKET is set (Type=notify units); does nothing otherwise.
 * A message that cannot be sent is logged once as a warning, then at debug level.
 */
export class SystemdNotifier {
  /** The socket it writes to, or undefined when not run by systemd. */
  readonly socket?: string;
  private readonly runtime: Runtime;
  private readonly logger: () => Logger;
  private warned = false;

  /** `socket` comes from $NOTIFY_SOCKET; `logger` returns the current logger (a HUP replaces it). */
  constructor(socket: string | undefined, runtime: Runtime, logger: () => Logger) {
    this.socket = socket;
    this.runtime = runtime;
    this.logger = logger;
  }

  /** READY=1: the first workers serve (or the workers of a reload do). */
  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`);
  }

  /** RELOADING=1 with the time it began (HUP). */
  reloading(status: string): void {
    if (!this.socket) return;
    this.send(`RELOADING=1\nMONOTONIC_USEC=${this.runtime.monotonicMicroseconds()}\nSTATUS=${status}`);
  }

  /** STOPPING=1 (TERM, INT, QUIT, or a halt). */
  stopping(status: string): void {
    this.send(`STOPPING=1\nSTATUS=${status}`);
  }

  /** MAINPID=: this process is now the service's main process (a USR2 master taking over, or rolling back). */
  mainPid(status: string): void {
    this.send(`MAINPID=${process.pid}\nREADY=1\nSTATUS=${status}`);
  }

  /** WATCHDOG=1: the master's loop runs (src/systemd-watchdog.ts). */
  watchdog(): void {
    this.send('WATCHDOG=1');
  }

  private send(datagram: string): void {
    if (!this.socket) return;
    try {
      this.runtime.notify(this.socket, datagram);
    } catch (error) {
      const line = `Cannot notify systemd at ${this.socket}: ${(error as Error).message}`;
      if (this.warned) this.logger().debug(line);
      else this.logger().warning(line);
      this.warned = true;
    }
  }
}
