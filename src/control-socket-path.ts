/**
 * Where the control socket is: the same rule in the master (which binds it) and in `tsgunicorn ctl` (which
 * connects), both from the resolved settings.
 */
import os from 'node:os';
import path from 'node:path';
import type { Settings } from './settings.ts';

/** The settings the path depends on. */
export type ControlSocketSettings = Pick<Settings, 'controlSocket' | 'pidfile' | 'procName' | 'app' | 'chdir'>;

/**
 * The control socket's path: --control-socket; else `<pidfile>.ctl`; else `tsgunicorn-NAME.ctl` (NAME: --name,
 * else the app file's name without its extension; plain `tsgunicorn.ctl` with neither) in $XDG_RUNTIME_DIR, else
 * in ~/.tsgunicorn/. Relative paths are taken from --chdir, as the master (which changes there first) reads them.
 */
export function controlSocketPath(settings: ControlSocketSettings, env: Record<string, string | undefined>, cwd: string): string {
  const base = path.resolve(cwd, settings.chdir ?? '.');
  if (settings.controlSocket) return path.resolve(base, settings.controlSocket);
  if (settings.pidfile) return `${path.resolve(base, settings.pidfile)}.ctl`;
  return path.join(defaultControlDir(env), defaultControlName(settings));
}

/** The directory of the default socket names: $XDG_RUNTIME_DIR (per user, mode 0700), else ~/.tsgunicorn. */
export function defaultControlDir(env: Record<string, string | undefined>): string {
  return env.XDG_RUNTIME_DIR || path.join(env.HOME || os.homedir(), '.tsgunicorn');
}

/** `tsgunicorn-NAME.ctl`, or `tsgunicorn.ctl` when neither --name nor an app file names the server. */
function defaultControlName(settings: ControlSocketSettings): string {
  const appFile = settings.app ? path.basename(settings.app.replace(/:[\w$]+$/, '')).replace(/\.[^.]*$/, '') : '';
  const name = (settings.procName ?? appFile).replace(/[^\w.-]+/g, '_');
  return name ? `tsgunicorn-${name}.ctl` : 'tsgunicorn.ctl';
}

/** Whether a file name is one of the default socket names (`tsgunicorn ctl` picks the only one there is). */
export function isDefaultControlName(name: string): boolean {
  return /^tsgunicorn(-.+)?\.ctl$/.test(name);
}
