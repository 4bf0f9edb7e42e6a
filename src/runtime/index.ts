/** Picks the implementation of the runtime this process runs on, and imports user modules with it. */
import { pathToFileURL } from 'node:url';
import type { Runtime } from './types.ts';

export type {
  EngineName, FdListener, HeldSocket, ProcessIdentity, ProcessTitle, Runtime, TcpAddress, UnixAddress, WorkerCommand,
} from './types.ts';
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

const TYPESCRIPT_FILE = /\.(ts|mts|cts|tsx)$/;

/**
 * Imports a user module (the app, a config file) by path, with `query` appended to its URL. A TypeScript file
 * gets the runtime's help where it needs it (Node's esbuild hooks), and only then: plain JavaScript costs nothing.
 */
export async function importUserModule(file: string, query = ''): Promise<Record<string, unknown>> {
  const runtime = await currentRuntime();
  const typescript = TYPESCRIPT_FILE.test(file);
  if (typescript) await runtime.enableTypeScriptImports();
  try {
    const url = pathToFileURL(file).href + query;
    return await (runtime.importFile ? runtime.importFile(file, url) : import(url));
  } finally {
    if (typescript) runtime.releaseTypeScriptCompiler();
  }
}
