/**
 * `--worker-connections`: what a connection past the cap gets on the engines that see connections (node-http,
 * bun-listen): a 503 with `Connection: close`, written before the client has sent anything, then the close; and
 * one warning line. (Stopping to accept would leave it in the kernel queue for another worker, but neither
 * node:net nor Bun.listen can pause accepting on an inherited fd: closing the listener closes the fd.)
 */
import type { Logger } from '../glogging.ts';
import { rawErrorAnswer } from './app-response.ts';

/** The whole response, as bytes to write. */
export const OVER_CAPACITY_RESPONSE = Buffer.from(rawErrorAnswer(503), 'latin1');

/** Logs a refused connection. */
export function logOverCapacity(logger: Logger, hostname: string | undefined, maxConnections: number): void {
  logger.warning(`Connection from ip=${hostname || '-'} refused: ${maxConnections} connections already (--worker-connections)`);
}
