/**
 * `tsgunicorn build APP -o FILE [--target bun|node|deno]`: one executable holding tsgunicorn and the app, which
 * runs with every CLI option and no APP argument and re-spawns itself as its workers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { currentRuntime } from '../runtime/index.ts';
import { bunPackager } from './bun.ts';
import { bundleApp } from './bundle.ts';
import { denoPackager } from './deno.ts';
import { nodeSeaPackager } from './node-sea.ts';
import type { Packager } from './packager.ts';
import { BuildError } from './toolchain.ts';

const PACKAGERS: Record<string, Packager> = { bun: bunPackager, node: nodeSeaPackager, deno: denoPackager };

/** The build command's usage, printed by `tsgunicorn build --help`. */
const BUILD_HELP = `Usage: tsgunicorn build APP [-o FILE] [--target bun|node|deno] [--compile-target TARGET]

Bundles APP (MODULE[:EXPORT]) and tsgunicorn into one executable: run it as ./FILE [OPTIONS] (no APP).

Options:
  -o, --output FILE         the executable to write (default: APP's file name without its extension)
  --target bun|node|deno    the runtime to embed (default: bun with --compile-target, else the runtime
                            running this command)
  --compile-target TARGET   Bun's cross-compilation target, e.g. bun-linux-arm64 or bun-linux-x64-musl
  -h, --help                this text`;

/** Runs `tsgunicorn build` with the arguments after `build`; resolves with the exit status. */
export async function runBuild(argv: string[], cwd = process.cwd()): Promise<number> {
  let workDir: string | undefined;
  try {
    const { values, positionals } = parseBuildArgs(argv);
    if (values.help) {
      process.stdout.write(`${BUILD_HELP}\n`);
      return 0;
    }
    if (positionals.length !== 1) throw new BuildError(`expected one APP, got ${positionals.length ? positionals.join(' ') : 'none'} (see tsgunicorn build --help)`);
    const target = values.target ?? (values['compile-target'] ? 'bun' : (await currentRuntime()).name);
    const packager = PACKAGERS[target];
    if (!packager) throw new BuildError(`invalid value "${target}" for --target: expected bun, node or deno`);
    if (values['compile-target'] && target !== 'bun') throw new BuildError('--compile-target is for --target bun only');
    const app = positionals[0];
    const output = path.resolve(cwd, values.output ?? path.basename(app.replace(/:[\w$]+$/, '')).replace(/\.[^.]+$/, ''));
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsgunicorn-build-'));
    const bundle = await bundleApp(app, cwd, workDir, packager.format);
    const embedded = await packager.package(bundle, output, { compileTarget: values['compile-target'], workDir });
    const size = (fs.statSync(output).size / 2 ** 20).toFixed(1);
    process.stdout.write(`Built ${path.relative(cwd, output) || output} (${embedded}, ${size} MiB): run it as ./${path.basename(output)} [OPTIONS]\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof BuildError)) throw error;
    process.stderr.write(`tsgunicorn build: error: ${error.message}\n`);
    return 1;
  } finally {
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  }
}

function parseBuildArgs(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        output: { type: 'string', short: 'o' },
        target: { type: 'string' },
        'compile-target': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new BuildError((error as Error).message);
  }
}
