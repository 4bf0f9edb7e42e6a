#!/usr/bin/env node
/** The `tsgunicorn` command: the master, or a worker when spawned as one. */
import { runMaster } from './src/main.ts';
import { runWorker, workerBootFromEnv } from './src/worker.ts';

const boot = workerBootFromEnv();
if (boot) {
  await runWorker(boot);
} else {
  process.exit(await runMaster({ argv: process.argv.slice(2), env: { ...process.env }, cwd: process.cwd() }));
}
