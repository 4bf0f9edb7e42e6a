/**
 * Process titles through Linux's /proc, for the runtimes whose `process.title` does not set them all: the name
 * (`comm`) through /proc/self/comm, and the command line through /proc/self/mem.
 */
import { Buffer } from 'node:buffer';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';

/**
 * Sets the kernel's name of this process (/proc/PID/comm, 15 bytes at most): a thread may rename any thread of
 * its own process through /proc, so this needs neither privileges nor FFI (prctl(PR_SET_NAME) renames only the
 * calling thread). Does nothing where /proc is missing.
 */
export function setProcessName(name: string): void {
  try {
    writeFileSync('/proc/self/comm', Buffer.from(name).subarray(0, 15));
  } catch {
    // not Linux, or /proc not mounted: the name stays the runtime's
  }
}

/** Where this process's command line lives in its memory: fields 48 and 49 (arg_start, arg_end) of /proc/self/stat. */
function commandLineArea(): { start: number; end: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Field 2, the name, may hold spaces and parentheses: count the fields from the last ')' (which ends field 2).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { start: Number(fields[48 - 3]), end: Number(fields[49 - 3]) };
}

/**
 * Writes `title` over this process's command line, the way libuv does for Node's `process.title`: through
 * /proc/self/mem, which a process may always write (ps and /proc/PID/cmdline read that memory). The title is cut
 * to the length of the original command line, and the rest is zeroed. The runtime must no longer read its argv
 * from there (Bun copies it at start-up: `process.argv` and `Bun.argv` stay whole). Does nothing where /proc is
 * missing or /proc/self/mem cannot be opened: a process that changed its uid has root's /proc files, so workers
 * set their title before they drop root's rights.
 */
export function rewriteCommandLine(title: string): void {
  try {
    const { start, end } = commandLineArea();
    if (!(end > start)) return;
    const area = Buffer.alloc(end - start);
    area.write(title, 0, area.length - 1); // the last byte stays NUL, ending the one argument
    const mem = openSync('/proc/self/mem', 'r+');
    try {
      writeSync(mem, area, 0, area.length, start);
    } finally {
      closeSync(mem);
    }
  } catch {
    // ps keeps showing the command line
  }
}
