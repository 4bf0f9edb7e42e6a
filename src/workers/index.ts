/**
 * The serving engines by name: what the master logs for each, and how a worker loads the one it uses (only
 * that one: the others' runtime APIs are never touched).
 */
import type { CleartextProtocols } from '../http/http-protocols.ts';
import type { EngineName, Runtime } from '../runtime/index.ts';
import type { EngineFactory } from './base.ts';

interface EngineEntry {
  /** What the engine is, for the master's `Using worker:` line. */
  description: string;
  /**
   * Whether it can read a PROXY protocol header (--proxy-protocol): not the runtimes' native servers, which parse a
   * connection's bytes themselves.
   */
  readsProxyHeaders: boolean;
  /**
   * Why it cannot serve these protocols on a plain socket (--http-protocols) on `runtime`, or undefined when it can
   * (README, "HTTP/2").
   */
  protocolsUnsupported(protocols: CleartextProtocols, runtime: Runtime): string | undefined;
  load(): Promise<EngineFactory>;
}

/** What an engine that speaks HTTP/1.1 alone says to anything else. */
const http1Only = (why: string) => (protocols: CleartextProtocols) => (protocols.h2c || !protocols.h1 ? why : undefined);

/** Every engine tsgunicorn has. */
export const ENGINES: Record<EngineName, EngineEntry> = {
  'node-http': {
    description: 'node:http',
    readsProxyHeaders: true,
    protocolsUnsupported: (protocols, runtime) => (protocols.h2c ? runtime.nodeHttp2Unsupported : undefined),
    load: async () => (await import('./node-http.ts')).createNodeHttpEngine,
  },
  'deno-serve': {
    description: 'Deno.serve',
    readsProxyHeaders: false,
    // Deno.serve answers HTTP/1.1 and h2c with prior knowledge on every connection, and cannot be told otherwise.
    protocolsUnsupported: (protocols) => (protocols.h1 ? undefined : 'Deno.serve always serves HTTP/1.1 as well'),
    load: async () => (await import('./deno-serve.ts')).createDenoServeEngine,
  },
  'bun-serve': {
    description: 'Bun.serve',
    readsProxyHeaders: false,
    // Probed on Bun 1.4.5: a prior-knowledge HTTP/2 connection gets no answer.
    protocolsUnsupported: http1Only('Bun.serve speaks HTTP/1.1 only on a plain socket'),
    load: async () => (await import('./bun-serve.ts')).createBunServeEngine,
  },
  'bun-listen': {
    description: 'Bun.listen',
    readsProxyHeaders: true,
    protocolsUnsupported: http1Only('its HTTP layer (src/http/h1/) speaks HTTP/1.1 only'),
    load: async () => (await import('./bun-listen.ts')).createBunListenEngine,
  },
};
