/**
 * The serving engines by name: what the master logs for each, and how a worker loads the one it uses (only
 * that one: the others' runtime APIs are never touched).
 */
import type { EngineName } from '../runtime/index.ts';
import type { EngineFactory } from './base.ts';

interface EngineEntry {
  /** What the engine is, for the master's `Using worker:` line. */
  description: string;
  /**
   * Whether it can read a PROXY protocol header (--proxy-protocol): not the runtimes' native servers, which parse a
   * connection's bytes themselves.
   */
  readsProxyHeaders: boolean;
  load(): Promise<EngineFactory>;
}

/** Every engine tsgunicorn has. */
export const ENGINES: Record<EngineName, EngineEntry> = {
  'node-http': {
    description: 'node:http',
    readsProxyHeaders: true,
    load: async () => (await import('./node-http.ts')).createNodeHttpEngine,
  },
  'deno-serve': {
    description: 'Deno.serve',
    readsProxyHeaders: false,
    load: async () => (await import('./deno-serve.ts')).createDenoServeEngine,
  },
  'bun-serve': {
    description: 'Bun.serve',
    readsProxyHeaders: false,
    load: async () => (await import('./bun-serve.ts')).createBunServeEngine,
  },
  'bun-listen': {
    description: 'Bun.listen',
    readsProxyHeaders: true,
    load: async () => (await import('./bun-listen.ts')).createBunListenEngine,
  },
};
