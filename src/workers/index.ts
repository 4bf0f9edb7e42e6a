/**
 * The serving engines by name: what the master logs for each, and how a worker loads the one it uses (only
 * that one: the others' runtime APIs are never touched).
 */
import type { EngineName, Runtime } from '../runtime/index.ts';
import type { TlsLimits } from '../tls-options.ts';
import type { EngineFactory } from './base.ts';

interface EngineEntry {
  /** What the engine is, for the master's `Using worker:` line. */
  description: string;
  /**
   * Whether it can read a PROXY protocol header (--proxy-protocol): not the runtimes' native servers, which parse a
   * connection's bytes themselves.
   */
  readsProxyHeaders: boolean;
  /** What of TLS it cannot do on `runtime`, and why (README, "TLS"). */
  tlsLimits(runtime: Runtime): TlsLimits;
  load(): Promise<EngineFactory>;
}

/** Every engine tsgunicorn has. */
export const ENGINES: Record<EngineName, EngineEntry> = {
  'node-http': {
    description: 'node:http',
    readsProxyHeaders: true,
    tlsLimits: (runtime) => runtime.nodeTlsLimits,
    load: async () => (await import('./node-http.ts')).createNodeHttpEngine,
  },
  'deno-serve': {
    description: 'Deno.serve',
    readsProxyHeaders: false,
    tlsLimits: () => ({
      clientCertificates: 'cannot ask for client certificates (Deno.serve takes a certificate and key only)',
      ciphers: 'cannot restrict the ciphers (Deno.serve takes a certificate and key only)',
      minVersionTls13: 'cannot refuse TLS 1.2 (Deno.serve takes a certificate and key only)',
    }),
    load: async () => (await import('./deno-serve.ts')).createDenoServeEngine,
  },
  'bun-serve': {
    description: 'Bun.serve',
    readsProxyHeaders: false,
    tlsLimits: () => ({
      optionalClientCertificates: 'serves a client certificate that does not verify when certificates are optional, ' +
        'and tells the app nothing of it; use --cert-reqs 2 or --no-reuse-port (Bun.listen)',
    }),
    load: async () => (await import('./bun-serve.ts')).createBunServeEngine,
  },
  'bun-listen': {
    description: 'Bun.listen',
    readsProxyHeaders: true,
    tlsLimits: () => ({}),
    load: async () => (await import('./bun-listen.ts')).createBunListenEngine,
  },
};
