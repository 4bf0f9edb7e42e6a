// Runs every test/*.test.ts with node:test (Node 20 included, through the esbuild hooks).
// The integration tests start the CLI under each runtime in TSGUNICORN_TEST_RUNTIMES (default node,deno,bun).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const only = process.argv.slice(2);
const files = only.length > 0 ? only : fs.readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => `test/${f}`);
const result = spawnSync(process.execPath, ['--import', './scripts/register-typescript.mjs', '--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
