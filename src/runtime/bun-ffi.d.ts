/** The part of Bun's `bun:ffi` module that src/runtime/bun.ts uses (Bun ships its own full types). */
declare module 'bun:ffi' {
  export function dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, (...args: unknown[]) => unknown> };
  export const read: { i32(pointer: unknown, offset: number): number };
}
