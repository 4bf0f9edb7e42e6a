/**
 * USR2 binary upgrade, as Gunicorn's reexec and Unicorn's USR2: the old master starts a new master (the same
 * runtime, program and argv, in the directory it was started in) and hands it its listening sockets; the new master
 * serves beside it until the old one exits, then takes over (promotion).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Runtime } from './runtime/index.ts';
import { inheritedListener, type Listener, type ListenerDescription } from './sock.ts';

/** The old master's pid, in the new master's environment (Gunicorn's GUNICORN_PID). */
export const OLD_MASTER_PID_ENV = 'TSGUNICORN_PID';
/** The listening fds the new master inherits, comma-separated (Gunicorn's GUNICORN_FD). */
export const INHERITED_FDS_ENV = 'TSGUNICORN_FD';
/** What each of those fds is (bind text, address, reuse-port reservation), as JSON (a ListenersHandedOver). */
export const INHERITED_LISTENERS_ENV = 'TSGUNICORN_LISTENERS';

/** What the old master tells about the sockets it hands over. */
interface ListenersHandedOver {
  /** They came from systemd (socket activation): the new master serves on them whatever --bind says. */
  socketActivated: boolean;
  /** One per fd of TSGUNICORN_FD, in the same order. */
  listeners: ListenerDescription[];
}

/** What a new master gets from its old master. */
export interface UpgradeHandoff {
  oldMasterPid: number;
  listeners: Listener[];
  socketActivated: boolean;
}

/**
 * The old master's handoff when this process is a new master started by USR2, else undefined. Removes the
 * variables from `env`, so that workers and a later USR2 child do not see them.
 */
export function takeUpgradeHandoff(env: Record<string, string | undefined>, runtime: Runtime): UpgradeHandoff | undefined {
  const oldMasterPid = Number(env[OLD_MASTER_PID_ENV]);
  const fds = (env[INHERITED_FDS_ENV] ?? '').split(',').filter(Boolean).map(Number);
  const handedOver: ListenersHandedOver = JSON.parse(env[INHERITED_LISTENERS_ENV] || '{"socketActivated":false,"listeners":[]}');
  delete env[OLD_MASTER_PID_ENV];
  delete env[INHERITED_FDS_ENV];
  delete env[INHERITED_LISTENERS_ENV];
  if (!Number.isInteger(oldMasterPid) || oldMasterPid <= 0) return undefined;
  const listeners = fds.map((fd, index) => inheritedListener(runtime, fd, handedOver.listeners[index] ?? { bind: `fd://${fd}`, url: `fd://${fd}` }));
  return { oldMasterPid, listeners, socketActivated: handedOver.socketActivated };
}

/** What the old master needs to start its successor. */
export interface NewMasterOptions {
  runtime: Runtime;
  /** The command-line arguments the master was started with. */
  argv: string[];
  /** The working directory it was started in (before --chdir). */
  cwd: string;
  /** The environment it was started with. */
  env: Record<string, string | undefined>;
  listeners: Listener[];
  /** The listeners came from systemd. */
  socketActivated: boolean;
  /** systemd's $NOTIFY_SOCKET, which the master took out of its own environment. */
  notifySocket?: string;
  /** systemd's watchdog interval in ms (WATCHDOG_USEC, also taken out): the new master is watched too. */
  watchdogMs?: number;
}

/**
 * Starts the new master. It is detached (its own session and process group): it outlives the old master, and a
 * signal meant for the old master's group (Ctrl-C in its terminal, a TERM to the group) does not reach it. Its
 * stdout and stderr are the old master's, so both write to the same logs.
 */
export function spawnNewMaster(options: NewMasterOptions): ChildProcess {
  const { runtime, listeners } = options;
  const passing = runtime.passListeners(listeners.map((listener) => listener.fd));
  const handedOver: ListenersHandedOver = {
    socketActivated: options.socketActivated,
    listeners: listeners.map(({ bind, url, reusePort }) => ({ bind, url, reusePort })),
  };
  const env: Record<string, string | undefined> = {
    ...options.env,
    [OLD_MASTER_PID_ENV]: String(process.pid),
    [INHERITED_FDS_ENV]: passing.workerFds.join(','),
    [INHERITED_LISTENERS_ENV]: JSON.stringify(handedOver),
  };
  // systemd's sockets reach the new master as inherited fds: LISTEN_PID could not name it (its pid is not known
  // before the spawn).
  for (const name of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete env[name];
  if (options.notifySocket) env.NOTIFY_SOCKET = options.notifySocket;
  // WATCHDOG_PID would name the old master: without it, the new master takes the watchdog for itself.
  delete env.WATCHDOG_PID;
  if (options.watchdogMs !== undefined) env.WATCHDOG_USEC = String(Math.round(options.watchdogMs * 1000));
  const { command, args } = runtime.workerCommand();
  const child = spawn(command, [...args, ...options.argv], {
    cwd: options.cwd,
    env,
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', ...passing.stdio],
  });
  child.unref();
  return child;
}
