#!/usr/bin/env node
/** The `tsgunicorn` command: the master, or a worker when spawned as one (each loads only its own modules). */
import { workerBootFromEnv } from './src/messages.ts';

const boot = workerBootFromEnv();
if (boot) {
  await (await import('./src/worker.ts')).runWorker(boot);
} else {
  const { runMaster } = await import('./src/main.ts');
  process.exit(await runMaster({ argv: process.argv.slice(2), env: { ...process.env }, cwd: process.cwd() }));
}
