/** The master's entry: resolves the configuration, handles --help/--print-config/--check-config, runs the arbiter. */
import { loadApp } from './app.ts';
import { Arbiter } from './arbiter.ts';
import { type ConfigSources, formatSettings, helpText, resolveSettings } from './config.ts';
import { ConfigError } from './errors.ts';
import { Logger } from './glogging.ts';
import { checkTlsSettings } from './tls-options.ts';
import { EXIT } from './messages.ts';
import { currentRuntime } from './runtime/index.ts';
import { VERSION } from './version.ts';

function fail(message: string): number {
  process.stderr.write(`tsgunicorn: error: ${message}\n`);
  return EXIT.CONFIG;
}

/**
 * Runs tsgunicorn's master with the given sources (or `tsgunicorn ctl` when the first word is `ctl`); resolves
 * with the process exit status.
 * `appProvided` is true when the caller (serve()) supplies the handler itself, so no APP argument is needed.
 */
export async function runMaster(sources: ConfigSources, appProvided = false): Promise<number> {
  // `tsgunicorn ctl …` here rather than in cli.ts: executables built by `tsgunicorn build` come through serve().
  if (sources.argv[0] === 'ctl') return (await import('./ctl.ts')).runCtl(sources.argv.slice(1), sources.env, sources.cwd);
  const runtime = await currentRuntime();
  let settings;
  try {
    settings = await resolveSettings(sources);
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    throw error;
  }
  if (settings.help) {
    process.stdout.write(`${helpText()}\n`);
    return EXIT.OK;
  }
  if (settings.version) {
    process.stdout.write(`tsgunicorn ${VERSION} (${runtime.name} ${runtime.version})\n`);
    return EXIT.OK;
  }
  if (settings.printConfig) {
    process.stdout.write(`${formatSettings(settings)}\n`);
    return EXIT.OK;
  }
  if (!settings.app && !appProvided) return fail('no APP given: tsgunicorn [OPTIONS] app.ts (see --help)');
  if (settings.chdir) {
    try {
      process.chdir(settings.chdir);
    } catch (error) {
      return fail(`invalid value "${settings.chdir}" for --chdir (chdir): ${(error as Error).message}`);
    }
  }
  if (settings.checkConfig) {
    try {
      checkTlsSettings(settings);
    } catch (error) {
      return fail((error as Error).message);
    }
    if (settings.app) {
      try {
        await loadApp(settings.app);
      } catch (error) {
        return fail((error as Error).message.split('\n')[0]);
      }
    }
    process.stdout.write('Configuration OK\n');
    return EXIT.OK;
  }
  let logger: Logger;
  try {
    logger = new Logger(settings);
  } catch (error) {
    return fail((error as Error).message);
  }
  try {
    return await new Arbiter(settings, sources, runtime, logger).run();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logger.error(error.message);
    return EXIT.CONFIG;
  }
}
