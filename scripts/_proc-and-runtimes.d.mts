// Types for what the TypeScript tests import from _proc-and-runtimes.mjs (test/torture.test.ts).

/** Direct children of `pid`, from /proc/PID/task/*\/children, or `ps --ppid` where that file is missing. */
export function childrenOf(pid: number): number[];
