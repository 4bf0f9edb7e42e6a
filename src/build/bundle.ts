/**
 * Bundles an app and tsgunicorn into one JavaScript file with esbuild: the entry imports the app module and hands
 * it to serveBundledApp(), so the result needs no node_modules and no app on disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAppSpec } from '../app.ts';
import { BuildError } from './toolchain.ts';

/** What the packager of a target needs from the bundle. */
export interface BundleFormat {
  /** ES module (Bun, Deno) or CommonJS (Node's single executable applications run a CommonJS main). */
  format: 'esm' | 'cjs';
  /** esbuild's target, e.g. `node20` or `esnext`. */
  target: string;
}

/** tsgunicorn's own sources: the package root holding `src/bundled-app.ts`, searched upward from this module. */
function sourceRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'src', 'bundled-app.ts'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new BuildError("tsgunicorn's sources (src/) are not installed beside it: build from the npm package or a checkout");
    dir = parent;
  }
}

/** Bundles `appSpec` (MODULE[:EXPORT], relative to `cwd`) into `workDir`; returns the bundle's path. */
export async function bundleApp(appSpec: string, cwd: string, workDir: string, output: BundleFormat): Promise<string> {
  const { file, exportName } = parseAppSpec(appSpec);
  const appPath = path.resolve(cwd, file);
  if (!fs.existsSync(appPath)) throw new BuildError(`App module not found: ${appPath}`);
  const entry = path.join(workDir, 'entry.mjs');
  const bundledApp = path.join(sourceRoot(), 'src', 'bundled-app.ts');
  fs.writeFileSync(entry, [
    `import * as app from ${JSON.stringify(appPath)};`,
    `import { serveBundledApp } from ${JSON.stringify(bundledApp)};`,
    `serveBundledApp(app, ${JSON.stringify(exportName)}, ${JSON.stringify(path.basename(file))});`,
  ].join('\n'));
  const outfile = path.join(workDir, output.format === 'cjs' ? 'bundle.cjs' : 'bundle.mjs');
  const { build } = await import('esbuild');
  try {
    await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      format: output.format,
      target: output.target,
      // bun:ffi is loaded only on Bun; esbuild only by the TypeScript loader, which a bundle never needs.
      external: ['bun:ffi', 'esbuild'],
      jsx: 'automatic',
      logLevel: 'silent',
      // CommonJS has no import.meta: give it the file's URL (the executable itself at run time).
      ...(output.format === 'cjs'
        ? { banner: { js: 'var __import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
            define: { 'import.meta.url': '__import_meta_url' } }
        : {}),
    });
  } catch (error) {
    type Message = { text: string; location?: { file: string; line: number; column: number } };
    const first = (error as { errors?: Message[] }).errors?.[0];
    const where = first?.location ? ` (${path.resolve(first.location.file)}:${first.location.line}:${first.location.column})` : '';
    throw new BuildError(`bundling ${file} failed: ${first?.text ?? (error as Error).message}${where}`);
  }
  return outfile;
}
