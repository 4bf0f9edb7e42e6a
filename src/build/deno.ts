/**
 * `--target deno`: `deno compile` with the permissions and flags tsgunicorn needs. It embeds a `denort` runtime,
 * which Deno downloads from dl.deno.land unless DENORT_BIN names one (passed through).
 */
import { BuildError, runtimeExecutable, runTool } from './toolchain.ts';
import type { Packager } from './packager.ts';

/** Packages a bundle with `deno compile -A --unstable-net`. */
export const denoPackager: Packager = {
  format: { format: 'esm', target: 'esnext' },
  async package(bundle, output) {
    const deno = await runtimeExecutable('deno');
    try {
      runTool(deno, ['compile', '-A', '--unstable-net', '--no-check', '--output', output, bundle], 'deno compile');
    } catch (error) {
      if (!(error instanceof BuildError) || !/denort/i.test(error.output)) throw error;
      // Deno prints the cause as a numbered chain ("0: Setting up base binary.", "1: error sending request …").
      const causes = [...error.output.matchAll(/^\s*\d+: (.*)$/gm)].map((match) => match[1]);
      const cause = causes.find((line) => /denort|request|No such file/i.test(line)) ?? causes[0] ?? error.message;
      throw new BuildError(`deno compile could not get its denort runtime (${cause}): set DENORT_BIN to a denort binary of the same Deno version`);
    }
    return `deno ${runTool(deno, ['--version'], 'deno --version').split('\n')[0].split(' ')[1]}`;
  },
};
