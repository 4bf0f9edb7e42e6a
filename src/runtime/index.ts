/** Picks the implementation of the runtime this process runs on. */
import type { Runtime } from './types.ts';

export type { EngineName, FdListener, HeldSocket, Runtime, TcpAddress, UnixAddress, WorkerCommand } from './types.ts';
export { SocketError } from './types.ts';

let current: Runtime | undefined;

/** The Runtime for this process (Node, Deno or Bun), loaded once. */
export async function currentRuntime(): Promise<Runtime> {
  if (current) return current;
  const global = globalThis as { Deno?: unknown; Bun?: unknown };
  if (global.Deno) {
    current = (await import('./deno.ts')).denoRuntime;
  } else if (global.Bun) {
    const bun = await import('./bun.ts');
    await bun.prepareBunRuntime();
    current = bun.bunRuntime;
  } else {
    current = (await import('./node.ts')).nodeRuntime;
  }
  return current;
}
