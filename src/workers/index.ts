/**
 * The serving engines by name: what the master logs for each, and how a worker loads the one it uses (only
 * that one: the others' runtime APIs are never touched).
 */
import type { CleartextProtocols } from '../http/http-protocols.ts';
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
  /**
   * Why it cannot serve these protocols on a plain socket (--http-protocols) on `runtime`, or undefined when it can
   * (README, "HTTP/2").
   */
  protocolsUnsupported(protocols: CleartextProtocols, runtime: Runtime): string | undefined;
  /** What of TLS it cannot do on `runtime`, and why (README, "TLS"). */
  tlsLimits(runtime: Runtime): TlsLimits;
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
    tlsLimits: (runtime) => runtime.nodeTlsLimits,
    load: async () => (await import('./node-http.ts')).createNodeHttpEngine,
  },
  'deno-serve': {
    description: 'Deno.serve',
    readsProxyHeaders: false,
    // Deno.serve answers HTTP/1.1 and h2c with prior knowledge on every connection, and cannot be told otherwise.
    protocolsUnsupported: (protocols) => (protocols.h1 ? undefined : 'Deno.serve always serves HTTP/1.1 as well'),
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
    // Probed on Bun 1.4.5: a prior-knowledge HTTP/2 connection gets no answer.
    protocolsUnsupported: http1Only('Bun.serve has no HTTP/2 server (Bun 1.4); --no-reuse-port serves HTTP/2 with Bun.listen'),
    tlsLimits: () => ({
      optionalClientCertificates: 'serves a client certificate that does not verify when certificates are optional, ' +
        'and tells the app nothing of it; use --cert-reqs 2 or --no-reuse-port (Bun.listen)',
    }),
    load: async () => (await import('./bun-serve.ts')).createBunServeEngine,
  },
  'bun-listen': {
    description: 'Bun.listen',
    readsProxyHeaders: true,
    // HTTP/1.1 through src/http/h1/, HTTP/2 through node:http2 fed from the Bun socket (_bun-protocol-switch.ts).
    protocolsUnsupported: () => undefined,
    tlsLimits: () => ({
      http2AfterProxyHeader: 'offers no HTTP/2 behind a PROXY header: its TLS then runs in node:tls over the plain socket, ' +
        'which is not wired to the HTTP/2 server; drop h2 (HTTP/1.1 is served) or --proxy-protocol',
    }),
    load: async () => (await import('./bun-listen.ts')).createBunListenEngine,
  },
};
