/**
 * A Response body known without reading its stream. undici (the fetch of Node 20 and 22) keeps the value a
 * Response was made from and its byte length in an internal `Symbol(state)` slot; when that slot is found (once,
 * on a probe Response), a string or bytes body is written directly and any body of known length gets a
 * Content-Length. Elsewhere (undici 7's private fields in Node 24, Deno, Bun) nothing is known and the caller reads
 * the body stream.
 */

interface UndiciBody {
  stream?: ReadableStream | null;
  source: unknown;
  length: number | null;
}

/** What is known of a Response's body: its bytes when at hand, and its length in bytes when known. */
export interface KnownBody {
  bytes: string | Uint8Array | undefined;
  length: number | null;
}

const stateSlot = (() => {
  const probe = new Response('probe') as unknown as Record<symbol, { body?: UndiciBody } | undefined>;
  return Object.getOwnPropertySymbols(probe).find((slot) => {
    const body = probe[slot]?.body;
    return body?.source === 'probe' && body.length === 5;
  });
})();

/** The known body of a native Response with an unread body; undefined when nothing is known. */
export function knownBodyOf(response: Response): KnownBody | undefined {
  if (stateSlot === undefined) return undefined;
  const body = (response as unknown as Record<symbol, { body?: UndiciBody | null } | undefined>)[stateSlot]?.body;
  if (!body || body.stream?.locked || response.bodyUsed) return undefined;
  const { source, length } = body;
  const bytes = typeof source === 'string' || source instanceof Uint8Array ? source : undefined;
  return { bytes, length };
}
