// `node --import ./scripts/register-typescript.mjs …` lets Node 20 run the TypeScript tests and scripts:
// it registers the same esbuild hooks tsgunicorn uses for TypeScript apps (built into dist/ by scripts/build.mjs).
import { register } from 'node:module';

register('../dist/node-typescript-hooks.js', import.meta.url);
