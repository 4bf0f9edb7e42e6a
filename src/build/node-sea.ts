/**
 * `--target node`: a Single Executable Application. Node >= 25.5 builds it itself (`node --build-sea`); older Node
 * makes the preparation blob (`--experimental-sea-config`) and postject (a dependency) injects it into a copy of
 * the node binary, as Node's documentation does it. The Node used is the one running the build, else `node` on
 * the PATH: the executable embeds that Node.
 */
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { BuildError, runtimeExecutable, runTool } from './toolchain.ts';
import type { Packager } from './packager.ts';

/** The fuse Node's binary carries for postject to flip (Node's documentation names it). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** True when this Node has `--build-sea` (25.5 and later). */
function hasBuildSea(version: string): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major > 25 || (major === 25 && minor >= 5);
}

/** Packages a CommonJS bundle as a Node Single Executable Application. */
export const nodeSeaPackager: Packager = {
  format: { format: 'cjs', target: 'node20' },
  async package(bundle, output, { workDir }) {
    const node = await runtimeExecutable('node');
    const version = runTool(node, ['-p', 'process.versions.node'], 'node -p process.versions.node').trim();
    const [major, minor] = version.split('.').map(Number);
    if (major < 20 || (major === 20 && minor < 12)) throw new BuildError(`--target node needs Node >= 20.12 for single executable applications (found ${version})`);
    const config = path.join(workDir, 'sea-config.json');
    const seaConfig = { main: bundle, disableExperimentalSEAWarning: true };
    if (hasBuildSea(version)) {
      fs.writeFileSync(config, JSON.stringify({ ...seaConfig, output }));
      runTool(node, ['--build-sea', config], 'node --build-sea');
    } else {
      const blob = path.join(workDir, 'sea-prep.blob');
      fs.writeFileSync(config, JSON.stringify({ ...seaConfig, output: blob }));
      runTool(node, ['--experimental-sea-config', config], 'node --experimental-sea-config');
      fs.copyFileSync(node, output);
      fs.chmodSync(output, 0o755);
      const postject = module.createRequire(import.meta.url).resolve('postject/dist/cli.js');
      runTool(node, [postject, output, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], 'postject');
    }
    return `node ${version}`;
  },
};
