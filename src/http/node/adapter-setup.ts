/**
 * The node:http adapter's hooks and options as an engine makes them from its worker's context: the same for
 * node-http's HTTP/1.1 and HTTP/2 servers and bun-listen's HTTP/2 server. Only how a request marks its connection
 * busy differs by engine (`connectionBusy`, `connectionDone`).
 */
import type { Socket } from 'node:net';
import { ForwardingPolicy } from '../forwarded.ts';
import { requestLimitsOf } from '../limits.ts';
import { requestDeadlinesOf } from '../request-deadlines.ts';
import type { Logger } from '../../glogging.ts';
import type { Runtime } from '../../runtime/index.ts';
import { durationsOf, type Settings } from '../../settings.ts';
import type { RequestHooks } from '../../workers/base.ts';
import type { AdapterHooks, AdapterOptions } from './listener.ts';

/** The adapter's hooks: the worker's, and the engine's own count of each connection's requests in flight. */
export function adapterHooksOf(
  hooks: RequestHooks, logger: Logger, connectionBusy: (socket: Socket) => void, connectionDone: (socket: Socket) => void,
): AdapterHooks {
  return {
    logger,
    shouldCloseConnection: hooks.shouldCloseConnection,
    timed: hooks.timed,
    onRequestStart: (incoming) => {
      hooks.onRequestStart();
      connectionBusy(incoming.socket);
    },
    onRequestDone: (entry, incoming, status, startedAt) => {
      connectionDone(incoming.socket);
      hooks.onRequestDone(entry, incoming.method!, status, startedAt);
    },
  };
}

/** The adapter's options from the settings: the limits, the forwarding rules, the Server field, the deadlines. */
export function adapterOptionsOf(settings: Settings, runtime: Runtime, logger: Logger): AdapterOptions {
  return {
    answerAfterParse: runtime.nodeHttpAnswersAfterParse,
    limits: requestLimitsOf(settings),
    forwarding: new ForwardingPolicy(settings),
    serverHeader: settings.serverHeader,
    deadlines: requestDeadlinesOf(durationsOf(settings).requestTimeoutMs, logger),
  };
}
