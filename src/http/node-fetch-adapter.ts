/**
 * Serves a Fetch handler on node:http (the worker's engine on Node, Deno and Bun); the parts live in ./node/:
 * a lazy Request (request.ts), Response writing (response.ts, known-body.ts) and the listener (listener.ts).
 */
export { type AdapterHooks, type AdapterOptions, createRequestListener, type FetchRequestListener } from './node/listener.ts';
