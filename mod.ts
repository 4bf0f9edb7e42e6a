/**
 * tsgunicorn's library API: `serve()` runs the pre-fork server from code, `defineConfig()` types a config file.
 * @module
 */
import { toFetchHandler } from './src/app.ts';
import type { FetchHandler } from './src/http/types.ts';
import type { WebSocketHandler } from './src/websocket/app-handler.ts';
import { workerBootFromEnv } from './src/messages.ts';
import type { Settings } from './src/settings.ts';

export type { FetchHandler, RemoteAddress, ServeInfo } from './src/http/types.ts';
export type { Settings } from './src/settings.ts';
export type {
  ArbiterView, ExitedWorker, ForkingWorker, HookLog, ParentArbiter, RequestOutcome, ServerHooks, WorkerInfo, WorkerView,
} from './src/hooks.ts';
export type { AppWebSocket, UpgradableInfo, UpgradeOptions, WebSocketHandler } from './src/websocket/app-handler.ts';
export { VERSION } from './src/version.ts';

/** Settings as written in a config file or passed to serve(): any subset, by name. */
export type Config = Partial<Omit<Settings, 'printConfig' | 'checkConfig'>>;

/** Options for serve(): settings plus, instead of an `app` path, the handler itself. */
export interface ServeOptions extends Config {
  /**
   * The Fetch handler (or an object with fetch(), such as a Hono app) to serve; an object's `websocket` handler
   * serves WebSocket upgrades (README, "WebSocket").
   */
  fetch?: FetchHandler | { fetch: FetchHandler; websocket?: WebSocketHandler };
}

/** Types a config file's default export: `export default defineConfig({ workers: 4 })`. */
export function defineConfig(config: Config): Config {
  return config;
}

/**
 * Runs tsgunicorn from code. In the master it binds, spawns workers (each re-runs this script) and resolves with
 * the exit status when the master stops; in a worker it serves `options.fetch` (or `options.app`) and never resolves.
 * TSGUNICORN_CMD_ARGS, the config file and this process's command line apply on top of `options`.
 */
export async function serve(options: ServeOptions): Promise<number> {
  const { fetch, ...settings } = options;
  const handler = fetch ? toFetchHandler(fetch, 'serve({ fetch })') : undefined;
  const boot = workerBootFromEnv();
  if (boot) {
    await (await import('./src/worker.ts')).runWorker(boot, handler, settings);
    return new Promise<number>(() => {});
  }
  const { runMaster } = await import('./src/main.ts');
  return runMaster({ argv: process.argv.slice(2), env: { ...process.env }, cwd: process.cwd(), settings }, Boolean(handler));
}
