/**
 * Server hooks (Gunicorn's on_starting … on_exit, in camelCase): functions from the config file (or serve()'s
 * options) that tsgunicorn calls at points of the master's and the workers' lives, each in the process Gunicorn
 * calls it in. What each receives, and which are awaited, is typed here (and exported by mod.ts); a hook that
 * throws or rejects is logged in one line and the server goes on.
 */
import { readConfigFile } from './config.ts';
import { isResponse } from './http/app-response.ts';
import type { FetchHandler, ServeInfo } from './http/types.ts';
import type { Settings } from './settings.ts';
import type { WorkerHandle, WorkerState } from './worker-handle.ts';

/** The logger hooks may write to (the server's error log). */
export interface HookLog {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
  critical(message: string): void;
}

/** The master as a worker's hooks see it (postFork, workerExit): its pid and the settings the worker runs with. */
export interface ParentArbiter {
  readonly pid: number;
  readonly settings: Settings;
}

/** The master (arbiter) as the master's hooks see it. */
export interface ArbiterView extends ParentArbiter {
  /** The current settings (after a reload, the new ones). */
  readonly settings: Settings;
  /** The worker processes now. */
  readonly workers: readonly WorkerInfo[];
  /** How many workers the master keeps running (-w, changed by TTIN/TTOU). */
  readonly numWorkers: number;
  /** The server's error log. */
  readonly log: HookLog;
  /** Reloads the configuration and replaces the workers one by one, as HUP does. */
  reload(): void;
  /** Stops the server: gracefully (as TERM, the default) or quickly (as INT). */
  stop(graceful?: boolean): void;
}

/** A worker about to be spawned (preFork): its slot (TSGUNICORN_WORKER_ID) and spawn order. */
export interface ForkingWorker {
  readonly slot: number;
  readonly age: number;
}

/** A worker process as the master sees it. */
export interface WorkerInfo extends ForkingWorker {
  readonly pid: number;
  readonly state: WorkerState;
}

/** A worker the master has reaped (childExit): how it ended. */
export interface ExitedWorker extends WorkerInfo {
  /** Its exit status, or null when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: string | null;
}

/** The worker process itself, in the hooks that run in a worker. */
export interface WorkerView {
  readonly pid: number;
  /** Stable slot 0..N-1 (TSGUNICORN_WORKER_ID). */
  readonly slot: number;
  /** The master's pid. */
  readonly ppid: number;
  readonly settings: Settings;
  /** Requests answered so far by this worker. */
  readonly requests: number;
  /** The server's error log. */
  readonly log: HookLog;
}

/** What postRequest learns of a request's answer, once the handler has produced it (before its body is sent). */
export interface RequestOutcome {
  /** The response's status; when the handler threw, the status the server answers with (mostly 500). */
  status: number;
  /** Milliseconds from the handler's call to its Response. */
  durationMs: number;
  /** The handler's Response (read its status and headers, not its body: the server sends it). */
  response?: Response;
  /** What the handler threw or rejected with, or returned instead of a Response. */
  error?: unknown;
}

/**
 * Every server hook, with the process it runs in. Master hooks: onStarting, onReload, whenReady, preFork,
 * preExec, childExit, nworkersChanged, onExit. Worker hooks: postFork, postWorkerInit, workerInt, workerAbort,
 * preRequest, postRequest, workerExit. The hooks typed `void | Promise<void>` are awaited (the server waits
 * there, as Gunicorn does); the others are called and not waited for (a returned promise's rejection is logged).
 */
export interface ServerHooks {
  /** In the master, first thing, before it binds its sockets. Awaited. */
  onStarting(arbiter: ArbiterView): void | Promise<void>;
  /** In the master on a reload (HUP, --reload), with the new settings, before the new workers spawn. Awaited. */
  onReload(arbiter: ArbiterView): void | Promise<void>;
  /** In the master once its sockets listen, before the first workers spawn. Awaited. */
  whenReady(arbiter: ArbiterView): void | Promise<void>;
  /** In the master just before it spawns a worker. */
  preFork(arbiter: ArbiterView, worker: ForkingWorker): void;
  /** In the new worker, once it has started (as --user), before it loads the app. Awaited. */
  postFork(arbiter: ParentArbiter, worker: WorkerView): void | Promise<void>;
  /** In the worker once the app is loaded, before it serves. Awaited. */
  postWorkerInit(worker: WorkerView): void | Promise<void>;
  /** In the worker when it quits quickly: INT or QUIT (to it or the master). */
  workerInt(worker: WorkerView): void;
  /** In the worker when the master aborts it because its heartbeat stopped (--timeout). */
  workerAbort(worker: WorkerView): void;
  /** In the master on USR2, just before it starts the new master. */
  preExec(arbiter: ArbiterView): void;
  /** In the worker before the handler gets each request. */
  preRequest(worker: WorkerView, request: Request, info: ServeInfo): void;
  /** In the worker once the handler has answered each request (or failed to). */
  postRequest(worker: WorkerView, request: Request, outcome: RequestOutcome): void;
  /** In the master after a worker has exited. */
  childExit(arbiter: ArbiterView, worker: ExitedWorker): void;
  /** In the worker as it exits (the process ends right after). */
  workerExit(arbiter: ParentArbiter, worker: WorkerView): void;
  /** In the master when the number of workers to run changes (`previous` is null the first time). */
  nworkersChanged(arbiter: ArbiterView, count: number, previous: number | null): void;
  /** In the master just before it exits. Awaited. */
  onExit(arbiter: ArbiterView): void | Promise<void>;
}

/** A hook name. */
export type HookName = keyof ServerHooks;

/** The hooks as settings: a function, or null when unset. */
export type HookSettings = { [Name in HookName]: ServerHooks[Name] | null };

/** The hooks that run in a worker, which loads the config module itself for them (functions do not travel as JSON). */
export const WORKER_HOOKS: readonly HookName[] = [
  'postFork', 'postWorkerInit', 'workerInt', 'workerAbort', 'preRequest', 'postRequest', 'workerExit',
];

/** One error-log line for a hook that threw or rejected. */
function logHookFailure(log: HookLog, name: HookName, error: unknown): void {
  log.error(`Error in hook ${name}: ${String(error instanceof Error ? error.stack ?? error : error).split('\n')[0]}`);
}

type HookArgs<Name extends HookName> = Parameters<ServerHooks[Name]>;

/** Runs a call of the hook `name` without waiting for it; a throw or a rejection is logged. */
function guarded(log: HookLog, name: HookName, call: () => unknown): void {
  try {
    const result = call();
    if (typeof (result as Promise<unknown> | undefined)?.then === 'function') {
      (result as Promise<unknown>).then(undefined, (error: unknown) => logHookFailure(log, name, error));
    }
  } catch (error) {
    logHookFailure(log, name, error);
  }
}

/** Calls a hook that is not waited for (when set); a throw or a rejection is logged. */
export function callHook<Name extends HookName>(
  log: HookLog, name: Name, hook: ServerHooks[Name] | null | undefined, ...args: HookArgs<Name>
): void {
  if (hook) guarded(log, name, () => (hook as (...values: HookArgs<Name>) => unknown)(...args));
}

/** Calls a hook (when set) and waits for it; a throw or a rejection is logged. */
export async function awaitHook<Name extends HookName>(
  log: HookLog, name: Name, hook: ServerHooks[Name] | null | undefined, ...args: HookArgs<Name>
): Promise<void> {
  if (!hook) return;
  try {
    await (hook as (...values: HookArgs<Name>) => unknown)(...args);
  } catch (error) {
    logHookFailure(log, name, error);
  }
}

/** A worker as the master's hooks see it. */
export function workerInfo(worker: WorkerHandle): WorkerInfo {
  return { pid: worker.pid, slot: worker.slot, age: worker.age, state: worker.state };
}

/** The names of the worker hooks set in `settings`, for the worker's boot message. */
export function workerHooksSet(settings: Partial<HookSettings>): HookName[] {
  return WORKER_HOOKS.filter((name) => typeof settings[name] === 'function');
}

/**
 * A worker's hooks among `names` (those the master found set): from serve()'s options where given there, else
 * from the config file, which the worker imports itself since functions do not travel in its boot message. The
 * one place a worker reads hooks; nothing is imported when no worker hook is set.
 */
export async function loadWorkerHooks(
  configFile: string | null, names: readonly HookName[], fromCode: Record<string, unknown> = {},
): Promise<Partial<HookSettings>> {
  const inCode = (name: HookName) => typeof fromCode[name] === 'function';
  const fromFile = configFile && names.some((name) => !inCode(name)) ? await readConfigFile(configFile) : {};
  return Object.fromEntries(names.map((name) => [name, inCode(name) ? fromCode[name] : fromFile[name]]));
}

/** The status the server answers with when the handler failed: the error's own (a refused body), else 500. */
function failureStatus(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

/**
 * The handler with preRequest and postRequest around it, or the handler itself when neither is set (no cost
 * per request then). The hooks are called, not awaited; a throwing hook is logged and the request goes on.
 */
export function withRequestHooks(
  handler: FetchHandler, hooks: Pick<Partial<HookSettings>, 'preRequest' | 'postRequest'>, worker: WorkerView,
): FetchHandler {
  const { preRequest, postRequest } = hooks;
  if (!preRequest && !postRequest) return handler;
  const report = (request: Request, startedAt: number, value: unknown, error?: unknown) => {
    const response = error === undefined && isResponse(value) ? value : undefined;
    const failure = response ? undefined : error ?? value;
    const outcome: RequestOutcome = {
      status: response ? response.status : failureStatus(failure),
      durationMs: performance.now() - startedAt,
      response,
      error: failure,
    };
    guarded(worker.log, 'postRequest', () => postRequest!(worker, request, outcome));
  };
  return (request, info) => {
    // Called through guarded() rather than callHook: no argument array per request.
    if (preRequest) guarded(worker.log, 'preRequest', () => preRequest(worker, request, info));
    if (!postRequest) return handler(request, info);
    const startedAt = performance.now();
    let result: Response | Promise<Response>;
    try {
      result = handler(request, info);
    } catch (error) {
      report(request, startedAt, undefined, error ?? new Error('the handler threw undefined'));
      throw error;
    }
    if (typeof (result as Promise<Response> | null)?.then !== 'function') {
      report(request, startedAt, result);
      return result;
    }
    return (result as Promise<Response>).then((value) => {
      report(request, startedAt, value);
      return value;
    }, (error: unknown) => {
      report(request, startedAt, undefined, error ?? new Error('the handler rejected with undefined'));
      throw error;
    });
  };
}
