/**
 * Whether the engines that will serve a configuration's binds can serve its `--http-protocols` on them: checked by
 * the master at start (one line, exit 1) and on HUP, before any worker boots.
 */
import { parseBind } from '../address.ts';
import { cleartextProtocols, parseHttpProtocols } from '../http/http-protocols.ts';
import type { EngineName, Runtime } from '../runtime/index.ts';
import type { Settings } from '../settings.ts';
import { ENGINES } from './index.ts';

/** The engines serving `settings.bind`: TCP binds in reuse-port mode on the reuse-port engine, the rest inherited. */
function enginesFor(settings: Pick<Settings, 'bind'>, runtime: Runtime, reusePort: boolean): Set<EngineName> {
  const { inherit, reusePort: reusePortEngine } = runtime.engines;
  return new Set(settings.bind.map((bind) => (reusePort && typeof reusePortEngine === 'string' && parseBind(bind).kind === 'tcp'
    ? reusePortEngine
    : inherit)));
}

/**
 * Why the configuration's protocols cannot be served, as one line, or undefined when they can. With TLS
 * (`--certfile`) the sockets serve HTTP/1.1 and, with `h2` in the list, HTTP/2 chosen by ALPN; without, `h1` and
 * `h2c` on plain sockets.
 */
export function protocolsProblem(
  settings: Pick<Settings, 'bind' | 'httpProtocols' | 'certfile'>, runtime: Runtime, reusePort: boolean,
): string | undefined {
  const listed = parseHttpProtocols(settings.httpProtocols);
  // What the engine is asked for, in the terms it answers in: HTTP/2 over TLS needs what h2c needs (node:http2).
  let protocols = cleartextProtocols(settings.httpProtocols);
  if (settings.certfile !== null) {
    if (protocols.h2c) return `--http-protocols ${settings.httpProtocols}: h2c is HTTP/2 on a plain socket; with --certfile use h2`;
    protocols = { h1: true, h2c: listed.includes('h2') };
  } else if (!protocols.h1 && !protocols.h2c) {
    return `--http-protocols ${settings.httpProtocols}: h2 is negotiated over TLS only (--certfile); a plain socket needs h1 or h2c`;
  }
  for (const engine of enginesFor(settings, runtime, reusePort)) {
    const why = ENGINES[engine].protocolsUnsupported(protocols, runtime);
    if (why) return `--http-protocols ${settings.httpProtocols}: ${ENGINES[engine].description} (${engine} engine) cannot: ${why}`;
  }
  return undefined;
}
