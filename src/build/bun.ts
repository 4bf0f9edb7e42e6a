/** `--target bun`: `bun build --compile` turns the bundle into one executable (Bun's cross targets passed on). */
import { runtimeExecutable, runTool } from './toolchain.ts';
import type { Packager } from './packager.ts';

/** Packages a bundle with Bun; `compileTarget` is Bun's `--target` (e.g. bun-linux-arm64, bun-linux-x64-musl). */
export const bunPackager: Packager = {
  format: { format: 'esm', target: 'esnext' },
  async package(bundle, output, { compileTarget }) {
    const bun = await runtimeExecutable('bun');
    const args = ['build', '--compile', bundle, '--outfile', output];
    if (compileTarget) args.push(`--target=${compileTarget}`);
    runTool(bun, args, `bun build --compile${compileTarget ? ` --target=${compileTarget}` : ''}`);
    return `bun ${runTool(bun, ['--version'], 'bun --version').trim()}`;
  },
};
