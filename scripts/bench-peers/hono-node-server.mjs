// Peer for scripts/bench.mjs: @hono/node-server serving the hello handler on 127.0.0.1:PORT.
//   node hono-node-server.mjs PORT
// The bench copies this file into its peer cache folder, next to the node_modules it installed.
import { serve } from '@hono/node-server';

const server = serve({
  fetch: () => new Response('Hello, World!'),
  port: Number(process.argv[2]),
  hostname: '127.0.0.1',
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
