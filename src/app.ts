/** Loads the user's app: `MODULE[:EXPORT]` → a Fetch handler. */
import fs from 'node:fs';
import path from 'node:path';
import type { FetchHandler } from './http/types.ts';
import { importUserModule } from './runtime/index.ts';
import { websocketHandlerOf } from './websocket/app-handler.ts';

/** The app could not be imported or has no Fetch handler (the master exits 4: "App failed to load."). */
export class AppLoadError extends Error {}

/** Splits `app.ts:name` into the module path and the export name (default when absent). */
export function parseAppSpec(spec: string): { file: string; exportName: string | null } {
  const match = /^(.+):([A-Za-z_$][\w$]*)$/.exec(spec);
  return match ? { file: match[1], exportName: match[2] } : { file: spec, exportName: null };
}

/**
 * Turns an export into a Fetch handler: an object with fetch() (a Hono app), or a function. An object's
 * `websocket` handler (Bun's convention: `export default { fetch, websocket }`) stays on the handler as its
 * `websocket` property, where the worker finds it (src/websocket/app-handler.ts).
 */
export function toFetchHandler(value: unknown, what: string): FetchHandler {
  const candidate = value as { fetch?: unknown } | null | undefined;
  if (candidate && typeof candidate.fetch === 'function') {
    const target = candidate as { fetch: FetchHandler };
    const handler: FetchHandler = (request, info) => target.fetch(request, info);
    const websocket = websocketHandlerOf(candidate);
    return websocket ? Object.assign(handler, { websocket }) : handler;
  }
  if (typeof value === 'function') return value as FetchHandler;
  throw new AppLoadError(`${what} is not a Fetch handler: expected an object with a fetch(request) method or a function`);
}

/** Imports the app module and returns its Fetch handler; throws AppLoadError with a one-line reason. */
export async function loadApp(spec: string, cwd = process.cwd()): Promise<FetchHandler> {
  const { file, exportName } = parseAppSpec(spec);
  const fullPath = path.resolve(cwd, file);
  if (!fs.existsSync(fullPath)) throw new AppLoadError(`App module not found: ${fullPath}`);
  let module: Record<string, unknown>;
  try {
    module = await importUserModule(fullPath);
  } catch (error) {
    const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new AppLoadError(`Failed to import ${file}: ${reason}`);
  }
  return handlerFromModule(module, file, exportName);
}

/** Picks the Fetch handler out of an imported app module: the named export, else the default, else the module. */
export function handlerFromModule(
  module: Record<string, unknown>, file: string, exportName: string | null,
): FetchHandler {
  if (exportName) {
    if (!(exportName in module)) throw new AppLoadError(`${file} has no export named "${exportName}"`);
    return toFetchHandler(module[exportName], `${file}:${exportName}`);
  }
  if (module.default !== undefined) return toFetchHandler(module.default, `the default export of ${file}`);
  return toFetchHandler(module, `${file} (it has no default export)`);
}
