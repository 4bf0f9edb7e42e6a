/**
 * Resolves the configuration: defaults (and their env vars) < config file < TSGUNICORN_CMD_ARGS < command line.
 * Every value is checked against the settings table; a bad one raises a ConfigError naming it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseByteSize } from './byte-size.ts';
import { ConfigError } from './errors.ts';
import { importUserModule } from './runtime/index.ts';
import { describeFlag, SETTINGS, type SettingSpec, type Settings, settingByName } from './settings.ts';

/** The config files looked for in the working directory when `-c` is not given. */
export const DEFAULT_CONFIG_FILES = ['tsgunicorn.config.ts', 'tsgunicorn.config.js', 'tsgunicorn.config.json'];

/** What the command line asked for besides settings. */
export interface CommandLine {
  values: Partial<Record<keyof Settings, unknown>>;
  help: boolean;
  version: boolean;
}

/** Where the configuration comes from; defaults to this process's own argv, env and cwd. */
export interface ConfigSources {
  argv: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  /** Settings given in code (serve() options): above the config file, below TSGUNICORN_CMD_ARGS. */
  settings?: Record<string, unknown>;
}

/** Checks one value for a setting, converts text (from the CLI or env) to its type and runs the row's validator. */
export function coerceSetting(spec: SettingSpec, raw: unknown, origin: string): unknown {
  const value = coerceType(spec, raw, origin);
  if (value !== null) spec.validate?.(value as never);
  return value;
}

function coerceType(spec: SettingSpec, raw: unknown, origin: string): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(
      `${origin}: invalid value ${JSON.stringify(raw)} for ${describeFlag(spec)} (${spec.name}): expected ${expected}`,
    );
  };
  if (raw === null || raw === undefined) return spec.nullable ? null : fail('a value');
  const keyword = spec.keywords?.find((word) => word === String(raw).trim().toLowerCase());
  if (keyword) return keyword;
  switch (spec.type) {
    case 'int':
    case 'number': {
      const text = String(raw).trim();
      const pattern = spec.type === 'int' ? /^[+-]?\d+$/ : /^[+-]?(\d+\.?\d*|\.\d+)$/;
      const kind = spec.type === 'int' ? 'an integer' : 'a number';
      const expected = (spec.min === undefined ? kind : `${kind} >= ${spec.min}`) +
        (spec.keywords ? ` or ${spec.keywords.join(', ')}` : '');
      if (typeof raw !== 'number' && typeof raw !== 'string') fail(expected);
      if (!pattern.test(text)) fail(expected);
      const value = Number(text);
      if (!Number.isFinite(value) || (spec.min !== undefined && value < spec.min)) fail(expected);
      return value;
    }
    case 'octal': {
      // Gunicorn's auto_int: a leading 0 means octal (022), 0o/0x prefixes as in code, else decimal.
      const text = String(raw).trim().replace(/^0(?=\d)/, '0o');
      const value = typeof raw === 'number' ? raw : /^(0o[0-7]+|0x[\da-f]+|\d+)$/i.test(text) ? Number(text) : NaN;
      return Number.isInteger(value) && value >= (spec.min ?? 0) ? value : fail('an integer: 022 or 0o22 (octal), 0x12, 18');
    }
    case 'bytes':
      return parseByteSize(raw) ?? fail('a size in bytes, e.g. 536870912, 512M or 1G');
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (/^(1|true|yes|on)$/i.test(String(raw))) return true;
      if (/^(0|false|no|off)$/i.test(String(raw))) return false;
      return fail('true or false');
    case 'choice': {
      const text = String(raw).toLowerCase();
      return spec.choices!.includes(text) ? text : fail(`one of ${spec.choices!.join(', ')}`);
    }
    case 'strings': {
      const list = Array.isArray(raw) ? raw : [raw];
      if (list.some((item) => typeof item !== 'string' || item === '')) fail('a non-empty string or a list of them');
      return [...list];
    }
    case 'string':
      return typeof raw === 'string' && raw !== '' ? raw : fail('a non-empty string');
    case 'function':
      return typeof raw === 'function' ? raw : fail('a function (set in a config file or serve() options)');
  }
}

/** Splits a string into words the way a POSIX shell does (quotes and backslashes), for TSGUNICORN_CMD_ARGS. */
export function shellSplit(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote === "'") {
      if (ch === "'") quote = null;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = null;
      else if (ch === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) word += text[++i];
      else word += ch;
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word ??= '';
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '\\' && i + 1 < text.length) word += text[++i];
      else word += ch;
    }
  }
  if (quote) throw new ConfigError(`TSGUNICORN_CMD_ARGS: unterminated ${quote} quote`);
  if (word !== null) words.push(word);
  return words;
}

type ParseArgsOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

function parseArgsOptions(): ParseArgsOptions {
  const options: ParseArgsOptions = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
  };
  for (const spec of SETTINGS) {
    if (!spec.flag) continue;
    const type = spec.type === 'boolean' ? 'boolean' : 'string';
    const multiple = spec.type === 'strings';
    options[spec.flag] = { type, multiple, ...(spec.short ? { short: spec.short } : {}) };
    for (const alias of spec.aliases ?? []) options[alias] = { type, multiple };
    if (spec.negatable) options[`no-${spec.flag}`] = { type: 'boolean' };
  }
  return options;
}

/** Parses command-line words into raw setting values (not yet checked) plus --help/--version. */
export function parseCommandLine(args: string[], origin = 'command line'): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args, options: parseArgsOptions(), allowPositionals: true, strict: true });
  } catch (error) {
    throw new ConfigError(`${origin}: ${(error as Error).message.split('\n')[0]}`);
  }
  const values: CommandLine['values'] = {};
  for (const spec of SETTINGS) {
    for (const flag of [spec.flag, ...(spec.aliases ?? [])]) {
      const value = flag ? (parsed.values as Record<string, unknown>)[flag] : undefined;
      if (value === undefined) continue;
      const previous = values[spec.name];
      values[spec.name] = Array.isArray(previous) && Array.isArray(value) ? [...previous, ...value] : value;
    }
    if (spec.negatable && (parsed.values as Record<string, unknown>)[`no-${spec.flag}`]) values[spec.name] = false;
  }
  if (parsed.positionals.length > 1) {
    throw new ConfigError(`${origin}: expected one APP argument, got ${parsed.positionals.join(' ')}`);
  }
  if (parsed.positionals.length === 1) values.app = parsed.positionals[0];
  return { values, help: Boolean(parsed.values.help), version: Boolean(parsed.values.version) };
}

/** The defaults, with the env vars named in the table applied. */
export function defaultSettings(env: Record<string, string | undefined>): Settings {
  const settings: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const fromEnv = spec.env ? env[spec.env] : undefined;
    settings[spec.name] = fromEnv
      ? coerceSetting(spec, spec.fromEnv ? spec.fromEnv(fromEnv) : fromEnv, `environment variable ${spec.env}`)
      : structuredClone(spec.default);
  }
  return settings as unknown as Settings;
}

/** Reads a config file's settings: the default export (or the module's named exports) of a JS/TS module, or JSON. */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  if (!fs.existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
  let loaded: unknown;
  try {
    if (file.endsWith('.json')) {
      loaded = JSON.parse(fs.readFileSync(file, 'utf8'));
    } else {
      // A fresh URL on every read, so that a HUP reload sees the edited file.
      const module = await importUserModule(file, `?load=${Date.now()}`);
      loaded = module.default ?? { ...module };
    }
  } catch (error) {
    throw new ConfigError(`config file ${file} failed to load: ${(error as Error).message.split('\n')[0]}`);
  }
  if (typeof loaded !== 'object' || loaded === null || Array.isArray(loaded)) {
    throw new ConfigError(`config file ${file}: expected an object of settings`);
  }
  return loaded as Record<string, unknown>;
}

function applyValues(settings: Settings, values: Record<string, unknown>, origin: string): void {
  for (const [name, raw] of Object.entries(values)) {
    const spec = settingByName(name);
    if (!spec) throw new ConfigError(`${origin}: unknown setting "${name}"`);
    (settings as unknown as Record<string, unknown>)[name] = coerceSetting(spec, raw, origin);
  }
}

/** Builds the full configuration from its four layers. */
export async function resolveSettings(sources: ConfigSources): Promise<Settings & { help: boolean; version: boolean }> {
  const settings = defaultSettings(sources.env);
  const cmdArgsText = sources.env.TSGUNICORN_CMD_ARGS;
  const fromEnvArgs = cmdArgsText ? parseCommandLine(shellSplit(cmdArgsText), 'TSGUNICORN_CMD_ARGS') : null;
  const fromCli = parseCommandLine(sources.argv);
  const explicitConfig = (fromCli.values.config ?? fromEnvArgs?.values.config) as string | undefined;
  const configFile = explicitConfig
    ? path.resolve(sources.cwd, explicitConfig)
    : DEFAULT_CONFIG_FILES.map((name) => path.join(sources.cwd, name)).find((file) => fs.existsSync(file));
  if (configFile) {
    applyValues(settings, await readConfigFile(configFile), `config file ${path.basename(configFile)}`);
  }
  if (sources.settings) applyValues(settings, sources.settings, 'serve() options');
  if (fromEnvArgs) applyValues(settings, fromEnvArgs.values, 'TSGUNICORN_CMD_ARGS');
  applyValues(settings, fromCli.values, 'command line');
  if (configFile) settings.config = configFile;
  return { ...settings, help: fromCli.help, version: fromCli.version };
}

/** The resolved configuration as `name = value` lines, for `--print-config`. */
export function formatSettings(settings: Settings): string {
  const width = Math.max(...SETTINGS.map((spec) => spec.name.length));
  const show = (value: unknown) => (typeof value === 'function' ? '<function>' : JSON.stringify(value));
  return SETTINGS.map((spec) => `${spec.name.padEnd(width)} = ${show(settings[spec.name])}`).join('\n');
}

/** The `--help` text, generated from the settings table. */
export function helpText(): string {
  const lines = [
    'Usage: tsgunicorn [OPTIONS] APP', '       tsgunicorn build APP [-o FILE] [--target bun|node|deno]   (see tsgunicorn build --help)',
    '       tsgunicorn ctl [--socket PATH] [--json] COMMAND [ARGS]   (control a running server: tsgunicorn ctl --help)',
    '', 'APP is MODULE[:EXPORT], e.g. app.ts or src/server.js:handler.', '', 'Options:',
  ];
  for (const spec of SETTINGS) {
    if (!spec.flag) continue;
    lines.push(`  ${describeFlag(spec)}${spec.meta ? ` ${spec.meta}` : ''}`, `      ${spec.doc}`);
  }
  lines.push('  -h/--help', '      Show this help.', '  -v/--version', '      Show the version.');
  return lines.join('\n');
}
