/**
 * The serving engines by name: what the master logs for each, and how a worker loads the one it uses (only
 * that one: the others' runtime APIs are never touched).
 */
import type { EngineName } from '../runtime/index.ts';
import type { EngineFactory } from './base.ts';

interface EngineEntry {
  /** What the engine is, for the master's `Using worker:` line. */
  description: string;
  load(): Promise<EngineFactory>;
}

/** Every engine tsgunicorn has. */
export const ENGINES: Record<EngineName, EngineEntry> = {
  'node-http': {
    description: 'node:http',
    load: async () => (await import('./node-http.ts')).createNodeHttpEngine,
  },
  'deno-serve': {
    description: 'Deno.serve',
    load: async () => (await import('./deno-serve.ts')).createDenoServeEngine,
  },
  'bun-serve': {
    description: 'Bun.serve',
    load: async () => (await import('./bun-serve.ts')).createBunServeEngine,
  },
  'bun-listen': {
    description: 'Bun.listen',
    load: async () => (await import('./bun-listen.ts')).createBunListenEngine,
  },
};
