// Builds dist/ for Node (which cannot run the TypeScript sources by itself before Node 22.18):
// dist/cli.js (the bin), dist/mod.js (the library) and dist/node-typescript-hooks.js (TypeScript apps on Node).
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['esbuild', 'bun:ffi'],
  logLevel: 'warning',
};

// No code splitting: every file in dist/ sits next to node-typescript-hooks.js, which the Node runtime loads
// relative to its own module URL.
await build({ ...common, entryPoints: { cli: 'cli.ts', mod: 'mod.ts' }, outdir: 'dist' });
await build({ ...common, entryPoints: { 'node-typescript-hooks': 'src/runtime/node-typescript-hooks.ts' }, outdir: 'dist' });
