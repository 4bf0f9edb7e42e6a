// Builds dist/, the npm package's JavaScript (Node cannot run the TypeScript sources by itself before 22.18):
//   dist/tsgunicorn.js  the bin: ONE self-contained file (no node_modules needed beside it) that runs as
//                       `node|bun dist/tsgunicorn.js APP` or `deno run -A dist/tsgunicorn.js APP`
//   dist/mod.js         the library (serve, defineConfig), self-contained too
//   dist/hono.js        `tsgunicorn/hono`: Hono's WebSocket helper for tsgunicorn (imports the app's own `hono`)
//   dist/node-typescript-hooks.js  the esbuild hooks on their own, for scripts/register-typescript.mjs
//   dist/types/         with --types (npm pack): mod.ts's declarations, for the package's "exports"
// The TypeScript hooks (Node imports .ts apps through them) are inlined into the first two as a string that
// src/runtime/node.ts registers as a data: URL; they load esbuild from where tsgunicorn or the app finds it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['esbuild', 'bun:ffi'],
  logLevel: 'warning',
};

const hooks = await build({ ...common, entryPoints: ['src/runtime/node-typescript-hooks.ts'], write: false });
const hooksSource = hooks.outputFiles[0].text;
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/node-typescript-hooks.js', hooksSource);
await build({
  ...common,
  entryPoints: { tsgunicorn: 'cli.ts', mod: 'mod.ts', hono: 'src/websocket/hono.ts' },
  outdir: 'dist',
  external: [...common.external, 'hono', 'hono/*'],
  define: { TSGUNICORN_TYPESCRIPT_HOOKS: JSON.stringify(hooksSource) },
});

if (process.argv.includes('--types')) {
  fs.rmSync('dist/types', { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [
    'node_modules/typescript/bin/tsc', '--ignoreConfig', '--declaration', '--emitDeclarationOnly',
    '--allowImportingTsExtensions', '--module', 'NodeNext', '--target', 'ES2022', '--strict', '--skipLibCheck',
    '--types', 'node', '--lib', 'ES2023,DOM,DOM.Iterable', '--outDir', 'dist/types', 'mod.ts', 'src/websocket/hono.ts', 'src/runtime/bun-ffi.d.ts',
  ], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // Declarations keep the sources' `.ts` specifiers; a consumer resolves `./x.js` to `./x.d.ts`.
  for (const file of fs.readdirSync('dist/types', { recursive: true })) {
    const full = path.join('dist/types', file);
    if (!full.endsWith('.d.ts')) continue;
    fs.writeFileSync(full, fs.readFileSync(full, 'utf8').replace(/(from '\.{1,2}\/[^']*)\.ts'/g, "$1.js'"));
  }
}
