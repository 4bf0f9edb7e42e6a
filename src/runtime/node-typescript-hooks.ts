/**
 * Node module hooks (registered with module.register) that let Node import TypeScript: `.ts`, `.mts` and `.tsx`
 * files are transpiled by esbuild, and TypeScript-style specifiers (`./util` or `./util.js` for `util.ts`) resolve.
 */
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MessagePort } from 'node:worker_threads';

type Esbuild = typeof import('esbuild');
let esbuild: Esbuild;

/**
 * Loads esbuild (from the URL the registering thread resolved: these hooks may run from a data: URL, where a bare
 * specifier cannot resolve) and receives the port on which the Node runtime says 'stop' once the app is loaded:
 * esbuild's service process then exits instead of idling next to every worker (a later import starts a new one).
 */
export async function initialize(data?: { port?: MessagePort; esbuild?: string }): Promise<void> {
  esbuild = await import(data?.esbuild ?? 'esbuild');
  data?.port?.on('message', (message) => {
    if (message === 'stop') void esbuild.stop();
  });
  data?.port?.unref();
}

type Next<T> = (specifier: string, context: unknown) => Promise<T>;
interface Resolved { url: string; format?: string | null; shortCircuit?: boolean }
interface Loaded { format: string; source?: string | ArrayBuffer | Uint8Array | null; shortCircuit?: boolean }

const TYPESCRIPT_FILE = /\.(ts|mts|tsx)$/;

function typescriptAlternatives(specifier: string): string[] {
  if (/\.(js|mjs|jsx)$/.test(specifier)) return [specifier.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts').replace(/\.jsx$/, '.tsx')];
  if (/\.[a-z]+$/i.test(specifier)) return [];
  return ['.ts', '.tsx', '.mts', '/index.ts', '/index.tsx'].map((suffix) => specifier + suffix);
}

/** Falls back to the TypeScript file a relative or file: specifier most likely means. */
export async function resolve(specifier: string, context: { parentURL?: string }, next: Next<Resolved>): Promise<Resolved> {
  try {
    return await next(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:');
    if (!relative || !context.parentURL) throw error;
    for (const candidate of typescriptAlternatives(specifier)) {
      const url = new URL(candidate, context.parentURL);
      if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
    }
    throw error;
  }
}

/** Transpiles TypeScript files to ES modules. */
export async function load(url: string, context: unknown, next: Next<Loaded>): Promise<Loaded> {
  if (!url.startsWith('file:') || !TYPESCRIPT_FILE.test(new URL(url).pathname)) return next(url, context);
  const file = fileURLToPath(url);
  const { code } = await esbuild.transform(await fs.readFile(file, 'utf8'), {
    loader: file.endsWith('.tsx') ? 'tsx' : 'ts',
    format: 'esm',
    sourcefile: file,
    sourcemap: 'inline',
    target: `node${process.versions.node.split('.')[0]}`,
    jsx: 'automatic',
  });
  return { format: 'module', source: code, shortCircuit: true };
}
