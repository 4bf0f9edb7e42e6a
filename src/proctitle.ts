/** Process titles, the same shape for both roles (Gunicorn's `_setproctitle` serves master and workers alike). */
import type { ProcessTitle } from './runtime/types.ts';

/**
 * How a master or worker shows in `ps`: the title `tsgunicorn: master [name]` / `tsgunicorn: worker [name]` in
 * place of its command line, and the name `tsg-master` / `tsg-worker`. The name is what the kernel keeps as the
 * process's `comm` (at most 15 bytes): `ps -o comm`, `top`, `pgrep`/`pkill` and the OOM killer's log lines show
 * it. Cut to 15 bytes the title would read `tsgunicorn: mas`; the short name tells the roles apart instead.
 */
export function processTitle(role: 'master' | 'worker', procName: string | null, app: string | null): ProcessTitle {
  return { title: `tsgunicorn: ${role} [${procName ?? app ?? 'app'}]`, name: `tsg-${role}` };
}
