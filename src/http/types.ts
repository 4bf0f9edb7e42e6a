/**
 * The app contract, the same on every runtime and engine: a Fetch handler and the second argument it receives
 * (shaped like Deno's ServeHandlerInfo, so that a native Deno.serve engine can pass its own value through).
 */

/** The client's address, shaped like Deno's ServeHandlerInfo.remoteAddr. */
export interface RemoteAddress {
  transport: 'tcp' | 'unix';
  hostname: string;
  port: number;
}

/** The second argument a Fetch handler receives. */
export interface ServeInfo {
  remoteAddr: RemoteAddress;
}

/** A Fetch handler: what an app's `fetch` (or its default-exported function) is. */
export type FetchHandler = (request: Request, info: ServeInfo) => Response | Promise<Response>;
