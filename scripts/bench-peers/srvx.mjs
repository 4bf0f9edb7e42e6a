// Peer for scripts/bench.mjs: srvx serving the hello handler on 127.0.0.1:PORT, on node, deno or bun
// (srvx picks its adapter from the runtime's export conditions).
//   node|bun srvx.mjs PORT   or   deno run -A srvx.mjs PORT
// The bench copies this file into its peer cache folder, next to the node_modules it installed.
import process from 'node:process';
import { serve } from 'srvx';

const server = serve({
  fetch: () => new Response('Hello, World!'),
  port: Number(process.argv[2]),
  hostname: '127.0.0.1',
  silent: true,
});
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
