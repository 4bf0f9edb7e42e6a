/**
 * The entry of an executable made by `tsgunicorn build`: the app module is bundled in, so the executable serves it
 * with every CLI option and no APP argument, and re-spawns itself as its workers.
 */
import { serve } from '../mod.ts';
import { AppLoadError, handlerFromModule } from './app.ts';
import { EXIT } from './messages.ts';

/** Serves the bundled app module (its `exportName` export, else its default) as master or worker. */
export function serveBundledApp(module: Record<string, unknown>, exportName: string | null, file: string): void {
  let fetch;
  try {
    fetch = handlerFromModule(module, file, exportName);
  } catch (error) {
    if (!(error instanceof AppLoadError)) throw error;
    process.stderr.write(`tsgunicorn: error: ${error.message}\n`);
    process.exit(EXIT.APP_LOAD_ERROR);
  }
  serve({ fetch }).then((status) => process.exit(status));
}
