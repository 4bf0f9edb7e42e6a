// The app `npm run torture` (scripts/torture.mjs) and test/torture.test.ts serve on every runtime.
//   POST /echo            answers the request's body (the load checks it byte for byte)
//   POST /echo?delay=MS   the same, MS milliseconds later
//   POST /balloon?mib=N   keeps N MiB written (so resident) until the worker exits: --max-worker-memory's trigger
//   POST /stuck           never yields (while (true)): only the master's --timeout can end the worker
// Every answer names the worker's pid in `x-worker-pid`.
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What /balloon keeps alive for the worker's lifetime. */
const retained: Uint8Array[] = [];
const pidHeader = { 'x-worker-pid': String(process.pid) };

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    switch (url.pathname) {
      case '/echo': {
        const body = await request.text();
        const delay = Number(url.searchParams.get('delay') ?? 0);
        if (delay > 0) await sleep(delay);
        return new Response(body, { headers: pidHeader });
      }
      case '/balloon': {
        const mib = Number(url.searchParams.get('mib') ?? 0);
        // fill() writes every page: zeroed memory from calloc would not count in the RSS.
        retained.push(new Uint8Array(mib * 1024 * 1024).fill(1));
        return new Response(`kept ${mib} MiB more`, { headers: pidHeader });
      }
      case '/stuck':
        for (;;) {
          // Never yields: the heartbeat stops, and the master aborts then kills this worker.
        }
      default:
        return new Response('not found', { status: 404, headers: pidHeader });
    }
  },
};
