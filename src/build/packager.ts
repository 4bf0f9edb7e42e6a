/** The contract between `tsgunicorn build` and one target's way of making an executable from a bundle. */
import type { BundleFormat } from './bundle.ts';

/** Options a packager may use. */
export interface PackageOptions {
  /** A cross-compilation target, where the target's tool has them (Bun's `--target`). */
  compileTarget?: string;
  /** A scratch directory for intermediate files, removed after the build. */
  workDir: string;
}

/** Makes one executable of a target from a bundle. */
export interface Packager {
  /** The bundle this packager takes. */
  format: BundleFormat;
  /** Writes the executable to `output`; resolves with the runtime it embeds, e.g. `bun 1.4.5`. */
  package(bundle: string, output: string, options: PackageOptions): Promise<string>;
}
