#!/usr/bin/env node
/**
 * The `tsgunicorn` command: the master, a worker when spawned as one, or `tsgunicorn build` (each loads only its
 * own modules).
 */
import { workerBootFromEnv } from './src/messages.ts';

const boot = workerBootFromEnv();
if (boot) {
  await (await import('./src/worker.ts')).runWorker(boot);
} else if (process.argv[2] === 'build') {
  process.exit(await (await import('./src/build/index.ts')).runBuild(process.argv.slice(3)));
} else {
  const { runMaster } = await import('./src/main.ts');
  process.exit(await runMaster({ argv: process.argv.slice(2), env: { ...process.env }, cwd: process.cwd() }));
}
