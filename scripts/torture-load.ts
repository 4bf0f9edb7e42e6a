// The torture load (scripts/torture.mjs, test/torture.test.ts): clients POSTing to scripts/torture-app.ts in a
// loop on one undici Agent, every request counted: sent, answered 200 with its own body, or failed by kind.
import { Agent, request } from 'undici';

/** The shape of a load. */
export interface LoadShape {
  /** Clients, each with one request at a time; keep-alive: one connection each. */
  clients: number;
  /** Every slowEvery-th request of a client asks for an answer slowMs later (the others are answered at once). */
  slowEvery: number;
  slowMs: number;
  /** The request body's size in bytes. */
  bodyBytes: number;
  /** A new connection per request (`reset`) instead of keep-alive. */
  fresh: boolean;
  /** Headers and body timeouts of each request. */
  requestTimeoutMs: number;
}

/** Issue 14's load: 32 keep-alive connections, one request in four answered 50 ms later, 256-byte bodies. */
export const TORTURE_LOAD: LoadShape = { clients: 32, slowEvery: 4, slowMs: 50, bodyBytes: 256, fresh: false, requestTimeoutMs: 10_000 };

/** What a load counted. `failed` is sent − ok once the load has stopped. */
export interface LoadCounts {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by kind ("reset: ECONNRESET", "refused", "wrong body", "HTTP 503", …). */
  kinds: Map<string, number>;
}

/** A running load. */
export interface Load {
  /** The counts so far (requests in flight are sent, not yet ok or failed). */
  readonly counts: LoadCounts;
  /** Stops sending, waits for the requests in flight, closes the connections, and gives the counts. */
  stop(): Promise<LoadCounts>;
}

/** A failed request's kind: reset, refused, timeout, or the error's code. */
export function failureKind(error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  if (code === 'ECONNRESET' || code === 'EPIPE') return `reset: ${code}`;
  // undici's SocketError: the connection ended ("other side closed") or closed under the request.
  if (code === 'UND_ERR_SOCKET') return `reset: ${message}`;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return `timeout: ${code}`;
  return code ?? message ?? String(error);
}

/** "reset: ECONNRESET 3, refused 1", most frequent first. */
export function kindsText(kinds: Map<string, number>): string {
  return [...kinds].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${n}`).join(', ');
}

/** A request body unique to one request of one client, `bytes` long. */
function bodyFor(client: number, seq: number, bytes: number): string {
  const head = `client=${client} seq=${seq} `;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
}

/** Starts `shape.clients` clients on `origin` (http://host:port), sending until `stop()`. */
export function startLoad(origin: string, shape: LoadShape = TORTURE_LOAD): Load {
  const agent = new Agent({ connections: shape.clients, keepAliveTimeout: 4_000 });
  const counts: LoadCounts = { sent: 0, ok: 0, failed: 0, kinds: new Map() };
  let running = true;
  const fail = (kind: string) => {
    counts.failed++;
    counts.kinds.set(kind, (counts.kinds.get(kind) ?? 0) + 1);
  };
  const client = async (id: number) => {
    for (let seq = 0; running; seq++) {
      const slow = seq % shape.slowEvery === shape.slowEvery - 1;
      const body = bodyFor(id, seq, shape.bodyBytes);
      counts.sent++;
      try {
        const res = await request(`${origin}/echo${slow ? `?delay=${shape.slowMs}` : ''}`, {
          dispatcher: agent, method: 'POST', body, reset: shape.fresh,
          headers: { 'content-type': 'text/plain' },
          headersTimeout: shape.requestTimeoutMs, bodyTimeout: shape.requestTimeoutMs,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) fail(`HTTP ${res.statusCode}`);
        else if (text !== body) fail('wrong body');
        else counts.ok++;
      } catch (error) {
        fail(failureKind(error));
        // A refused connection fails at once: do not spin.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  const clients = Array.from({ length: shape.clients }, (_, id) => client(id));
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(clients);
      await agent.close().catch(() => agent.destroy());
      return counts;
    },
  };
}
