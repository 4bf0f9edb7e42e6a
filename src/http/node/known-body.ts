/**
 * A Response body known without reading its stream. Two Fetch implementations keep the value a Response was made
 * from in an internal symbol-keyed slot as `body: { source, length }`: undici 6 (the fetch of Node 20 and 22) in
 * `Symbol(state)`, with the body's stream always made, and Deno in `Symbol(response)`, with `streamOrStatic` that
 * stays a plain `{ body, consumed }` until someone asks for the stream, and no length for strings. The slot is
 * found once, on a probe Response; then a string or bytes body is written directly and any body of known length
 * gets a Content-Length. Elsewhere (undici 7's private fields in Node 24, Bun) nothing is known and the caller
 * reads the body stream.
 */
import { Buffer } from 'node:buffer';

interface InternalBody {
  /** undici: the body's stream, made with the Response. */
  stream?: ReadableStream | null;
  /** Deno: the static body, until someone asks for the stream (then the stream). */
  streamOrStatic?: ReadableStream | { body: unknown; consumed: boolean };
  source: unknown;
  length: number | null;
}

type WithSlots = Record<symbol, { body?: InternalBody | null } | undefined>;

/** What is known of a Response's body: its bytes when at hand, and its length in bytes when known. */
export interface KnownBody {
  bytes: string | Uint8Array | undefined;
  length: number | null;
}

const bodySlot = (() => {
  const probe = new Response('probe');
  // Deno makes a plain string body's slot only once the headers are read (a lazy fast path of Deno.serve).
  void probe.headers;
  return Object.getOwnPropertySymbols(probe).find((slot) => (probe as unknown as WithSlots)[slot]?.body?.source === 'probe');
})();

/** Whether someone has taken the body's stream, so that its source no longer tells what is left to send. */
function streamTaken(body: InternalBody): boolean {
  if ('streamOrStatic' in body) return !(body.streamOrStatic && 'consumed' in body.streamOrStatic);
  return body.stream?.locked ?? false;
}

/**
 * The known body of a native Response with an unread body; undefined when nothing is known. Read the Response's
 * headers first: on Deno that is what sets the slot of a plain string body.
 */
export function knownBodyOf(response: Response): KnownBody | undefined {
  if (bodySlot === undefined) return undefined;
  const body = (response as unknown as WithSlots)[bodySlot]?.body;
  if (!body || response.bodyUsed || streamTaken(body)) return undefined;
  const { source } = body;
  if (typeof source === 'string') return { bytes: source, length: body.length ?? Buffer.byteLength(source) };
  return { bytes: source instanceof Uint8Array ? source : undefined, length: body.length };
}
