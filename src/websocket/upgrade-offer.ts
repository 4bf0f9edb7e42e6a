/**
 * One request that the app may take over as a WebSocket, on the engines that write their own responses
 * (node-http, bun-listen): the handler's `info.upgrade(request, { data, headers })` checks that the request is a
 * WebSocket handshake and records the app's choice; once the handler has returned, the engine writes the 101 and
 * starts a WebSocketConnection (src/websocket/starter.ts). Also what the native-server wrapper
 * (src/workers/_native.ts) reads to know a request was upgraded.
 */
import type { RemoteAddress, ServeInfo } from '../http/types.ts';
import type { UpgradableInfo, UpgradeOptions } from './app-handler.ts';
import { handshakeKeyOf, switchingProtocolsHead } from './handshake.ts';

/**
 * Set on a request's info once the app has upgraded it: the Response that completes the handshake for a server
 * that needs one (Deno.serve's 101), or null where the engine completes it itself.
 */
export const UPGRADE_ANSWER = Symbol('tsgunicorn.upgradeAnswer');

/**
 * Set on a request's info by an upgrade that leaves the request's own headers unreadable (Deno's): a copy taken
 * before, for the access log.
 */
export const UPGRADED_REQUEST_HEADERS = Symbol('tsgunicorn.upgradedRequestHeaders');

/** An info whose request may have been upgraded. */
export interface UpgradedInfo extends ServeInfo {
  [UPGRADE_ANSWER]?: Response | null;
  [UPGRADED_REQUEST_HEADERS]?: Headers;
}

/** Whether the handler upgraded the request this info came with. */
export function isUpgraded(info: ServeInfo): boolean {
  return (info as UpgradedInfo)[UPGRADE_ANSWER] !== undefined;
}

/** A request's method and fields, read only if the app asks for the upgrade. */
export interface HandshakeRequest {
  method: string;
  field(name: string): string | null;
}

/** The app's choice for one upgradable request. */
export class UpgradeOffer {
  /** The client's Sec-WebSocket-Key, once the app has upgraded the request. */
  key?: string;
  options?: UpgradeOptions;
  private readonly request: HandshakeRequest;

  constructor(request: HandshakeRequest) {
    this.request = request;
  }

  /** info.upgrade(): true, and the request is taken over, when it is a WebSocket handshake. */
  accept(info: UpgradedInfo, options: UpgradeOptions | undefined): boolean {
    if (this.key !== undefined) return true;
    const key = handshakeKeyOf(this.request.method, this.request.field);
    if (key === undefined) return false;
    this.key = key;
    this.options = options;
    info[UPGRADE_ANSWER] = null;
    return true;
  }

  /** The 101 response head that completes the handshake. */
  head(): string {
    return switchingProtocolsHead(this.key!, this.options?.headers);
  }
}

/**
 * An info for an upgradable request: `remoteAddr` and `clientCertificate` (read lazily from `base`), and
 * `upgrade()`, which `accept` answers (UpgradeOffer.accept, with this info to mark).
 */
export function upgradableInfo(
  base: ServeInfo, accept: (info: UpgradedInfo, options: UpgradeOptions | undefined) => boolean,
): UpgradableInfo & UpgradedInfo {
  const info: UpgradableInfo & UpgradedInfo = {
    get remoteAddr(): RemoteAddress {
      return base.remoteAddr;
    },
    upgrade: (_request: Request, options?: UpgradeOptions) => accept(info, options),
  };
  // A TLS connection's (read lazily from `base` as well).
  if ('clientCertificate' in base) {
    Object.defineProperty(info, 'clientCertificate', { get: () => base.clientCertificate, enumerable: true });
  }
  return info;
}

/** upgrade() of a request that is no Upgrade request at all (node:http hands it to the request listener). */
export const notUpgradable = (): boolean => false;
