/**
 * The app contract, the same on every runtime and engine: a Fetch handler and the second argument it receives
 * (shaped like Deno's ServeHandlerInfo, so that a native Deno.serve engine can pass its own value through).
 */
import type { X509Certificate } from 'node:crypto';

/** The client's address, shaped like Deno's ServeHandlerInfo.remoteAddr. */
export interface RemoteAddress {
  transport: 'tcp' | 'unix';
  hostname: string;
  port: number;
}

/** The second argument a Fetch handler receives. */
export interface ServeInfo {
  remoteAddr: RemoteAddress;
  /**
   * On a TLS connection: the certificate its client sent, verified against --ca-certs (--cert-reqs 1 or 2), or
   * null when it sent none or none was asked for. Read on first access. Absent on plain HTTP and on the engines
   * that cannot tell (Bun.serve, Deno.serve: README, "TLS").
   */
  readonly clientCertificate?: X509Certificate | null;
}

/** A Fetch handler: what an app's `fetch` (or its default-exported function) is. */
export type FetchHandler = (request: Request, info: ServeInfo) => Response | Promise<Response>;
