/**
 * The control socket's commands: what each one asks of the master (the arbiter's own methods, the ones its
 * signals call) and how its arguments are read. `help` lists them.
 */
import type { ControlRequest } from './control-protocol.ts';

/** One worker in `stats`. */
export interface WorkerStats {
  pid: number;
  slot: number;
  state: string;
  /** The configuration generation it runs (HUP starts a new one). */
  generation: number;
  /** Seconds since it was spawned. */
  ageSeconds: number;
  /** Seconds since its last message (heartbeat). */
  heartbeatAgeSeconds: number;
  /** Requests served, in flight, resident memory and event-loop lag at its last heartbeat. */
  requests: number;
  inFlight: number;
  rssBytes: number;
  /** Undefined until its first heartbeat. */
  lagMs?: number;
}

/** The `stats` reply. */
export interface MasterStats {
  pid: number;
  version: string;
  runtime: string;
  engine: string;
  uptimeSeconds: number;
  /** The number of workers the master keeps (workers add/remove change it). */
  targetWorkers: number;
  workers: WorkerStats[];
}

/** What the control socket may ask of the master. */
export interface ControlledMaster {
  controlStats(): MasterStats;
  /** TTIN `count` times; returns the new target. */
  addWorkers(count: number): number;
  /** TTOU `count` times (never below one worker); returns the new target. */
  removeWorkers(count: number): number;
  /** Stops one worker gracefully (it is respawned); false when no live worker has that pid. */
  killWorker(pid: number): boolean;
  /** HUP. */
  reload(): Promise<void>;
  /** USR1. */
  reopenLogs(): void;
  /** TERM (graceful) or QUIT. */
  shutdown(graceful: boolean): void;
}

/** A command's answer, and what to do once the answer has been sent (shutdown: the master exits after it). */
export interface ControlOutcome {
  result: unknown;
  afterReply?: () => void;
}

/** A request the master refuses (unknown command, bad argument): its message is the error reply. */
export class ControlCommandError extends Error {}

interface CommandSpec {
  usage: string;
  doc: string;
  run(master: ControlledMaster, args: string[]): ControlOutcome;
}

/** At most this many workers are added or removed by one command (a typo must not fork a thousand processes). */
const MAX_STEP = 64;

function count(args: string[], usage: string): number {
  if (args.length > 1) throw new ControlCommandError(`usage: ${usage}`);
  const text = args[0] ?? '1';
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_STEP)) throw new ControlCommandError(`invalid count "${text}": expected 1 to ${MAX_STEP}`);
  return n;
}

function noArgs(args: string[], usage: string): void {
  if (args.length > 0) throw new ControlCommandError(`usage: ${usage}`);
}

const COMMANDS: Record<string, CommandSpec> = {
  'stats': {
    usage: 'stats',
    doc: 'the master (pid, uptime, engine) and each worker (pid, slot, age, state, last heartbeat, requests, in flight, RSS, event-loop lag)',
    run: (master, args) => (noArgs(args, 'stats'), { result: master.controlStats() }),
  },
  'workers add': {
    usage: 'workers add [N]',
    doc: 'run N more workers (as N TTIN signals; default 1)',
    run: (master, args) => ({ result: { targetWorkers: master.addWorkers(count(args, 'workers add [N]')) } }),
  },
  'workers remove': {
    usage: 'workers remove [N]',
    doc: 'run N fewer workers, the oldest stopped gracefully (as N TTOU signals; never below 1)',
    run: (master, args) => ({ result: { targetWorkers: master.removeWorkers(count(args, 'workers remove [N]')) } }),
  },
  'worker kill': {
    usage: 'worker kill PID',
    doc: 'stop one worker gracefully; the master starts another in its place',
    run: (master, args) => {
      const pid = args.length === 1 && /^\d+$/.test(args[0]) ? Number(args[0]) : NaN;
      if (!Number.isSafeInteger(pid)) throw new ControlCommandError('usage: worker kill PID');
      if (!master.killWorker(pid)) throw new ControlCommandError(`no live worker has pid ${pid}`);
      return { result: { stopping: pid } };
    },
  },
  'reload': {
    usage: 'reload',
    doc: 'reload the configuration and replace the workers (as HUP)',
    run: (master, args) => (noArgs(args, 'reload'), void master.reload(), { result: { reloading: true } }),
  },
  'reopen-logs': {
    usage: 'reopen-logs',
    doc: 'reopen the log files, after log rotation (as USR1)',
    run: (master, args) => (noArgs(args, 'reopen-logs'), master.reopenLogs(), { result: { reopened: true } }),
  },
  'shutdown': {
    usage: 'shutdown [graceful|fast]',
    doc: 'stop the server: graceful (as TERM, the default) lets requests finish, fast (as QUIT) does not',
    run: (master, args) => {
      const mode = args[0] ?? 'graceful';
      if (args.length > 1 || (mode !== 'graceful' && mode !== 'fast')) throw new ControlCommandError('usage: shutdown [graceful|fast]');
      return { result: { shutdown: mode }, afterReply: () => master.shutdown(mode === 'graceful') };
    },
  },
  'help': {
    usage: 'help',
    doc: 'list the commands',
    run: () => ({ result: Object.values(COMMANDS).map(({ usage, doc }) => ({ command: usage, doc })) }),
  },
};

/** The command names, longest first (`workers add` before a one-word name), for the client to match words. */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS).sort((a, b) => b.split(' ').length - a.split(' ').length);

/** Runs a request against the master; throws a ControlCommandError for one it refuses. */
export function runControlCommand(master: ControlledMaster, request: ControlRequest): ControlOutcome {
  const spec = Object.hasOwn(COMMANDS, request.command) ? COMMANDS[request.command] : undefined;
  if (!spec) throw new ControlCommandError(`unknown command "${request.command}" (try: help)`);
  return spec.run(master, request.args);
}
