/** Process titles, the same shape for both roles (Gunicorn's `_setproctitle` serves master and workers alike). */

/** The title `ps` shows: `tsgunicorn: master [name]`, `tsgunicorn: worker [name]`. */
export function processTitle(role: 'master' | 'worker', procName: string | null, app: string | null): string {
  return `tsgunicorn: ${role} [${procName ?? app ?? 'app'}]`;
}
