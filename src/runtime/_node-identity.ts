/** node:process's identity calls, which Node and Bun share (Deno has no setgroups: see deno.ts). */
import type { ProcessIdentity } from './types.ts';

/** setgroups, setgid, then setuid (the order that keeps the right to make the next call). */
export function dropWithProcessCalls(identity: ProcessIdentity): void {
  process.setgroups!(identity.groups);
  process.setgid!(identity.gid);
  process.setuid!(identity.uid);
}
