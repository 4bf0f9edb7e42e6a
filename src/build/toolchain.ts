/** Finds and runs the runtimes' own tools (bun, node, deno) that package an executable. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { currentRuntime } from '../runtime/index.ts';

/** A tool failed or is missing; the message is one line for the user, `output` what the tool printed. */
export class BuildError extends Error {
  readonly output: string;
  constructor(message: string, output = '') {
    super(message);
    this.output = output;
  }
}

/**
 * The executable of runtime `name`: the one running this build when it is that runtime, else `name` on the PATH.
 * Throws a BuildError naming what to install otherwise.
 */
export async function runtimeExecutable(name: 'bun' | 'node' | 'deno'): Promise<string> {
  const runtime = await currentRuntime();
  if (runtime.name === name) return process.execPath;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir || '.', name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new BuildError(`--target ${name} needs ${name}: it is not on the PATH (install it, or run the build with ${name})`);
}

/** Runs a tool to completion with output captured; throws a BuildError with its last error line on failure. */
export function runTool(command: string, args: string[], what: string, env = process.env): string {
  const result = spawnSync(command, args, { encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new BuildError(`${what}: ${result.error.message}`);
  if (result.status !== 0) {
    const output = stripAnsi(`${result.stderr}\n${result.stdout}`);
    const lines = output.split('\n').map((line) => line.trim()).filter(Boolean);
    const reason = lines.find((line) => /error/i.test(line)) ?? lines.at(-1) ?? `exit status ${result.status}`;
    throw new BuildError(`${what} failed: ${reason}`, output);
  }
  return result.stdout;
}

function stripAnsi(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}
