/** `tsgunicorn ctl`'s output for people: `stats` as a table, `help` as a list, other replies as `key: value` lines. */
import { formatByteSize } from './byte-size.ts';
import type { MasterStats } from './control-commands.ts';

/** Columns padded to their widest cell, numbers right-aligned. */
function table(rows: string[][]): string {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  return rows.map((row) => row.map((cell, column) => (/^[\d.]/.test(cell) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
    .join('  ').trimEnd()).join('\n');
}

/** The `stats` reply: the master in two lines, then one row per worker. */
export function formatStats(stats: MasterStats): string {
  const head = [
    `master ${stats.pid}, tsgunicorn ${stats.version} on ${stats.runtime}, up ${stats.uptimeSeconds} s, ` +
      `${stats.workers.length} workers (target ${stats.targetWorkers})`,
    `engine: ${stats.engine}`,
  ];
  const rows = [['PID', 'SLOT', 'STATE', 'GEN', 'AGE', 'HEARTBEAT', 'REQUESTS', 'IN FLIGHT', 'RSS', 'LAG']];
  for (const w of stats.workers) {
    rows.push([String(w.pid), String(w.slot), w.state, String(w.generation), `${w.ageSeconds} s`, `${w.heartbeatAgeSeconds} s ago`,
      String(w.requests), String(w.inFlight), w.rssBytes > 0 ? formatByteSize(w.rssBytes) : '-', w.lagMs === undefined ? '-' : `${w.lagMs} ms`]);
  }
  return `${head.join('\n')}\n${table(rows)}`;
}

/** The `help` reply. */
export function formatHelp(commands: { command: string; doc: string }[]): string {
  return table(commands.map(({ command, doc }) => [command, doc]));
}

/** Any other reply: its fields, one a line. */
export function formatResult(result: unknown): string {
  if (typeof result !== 'object' || result === null) return String(result);
  return Object.entries(result).map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`).join('\n');
}
