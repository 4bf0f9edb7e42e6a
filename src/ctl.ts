/**
 * `tsgunicorn ctl [OPTIONS] COMMAND [ARGS]`: sends one command to a running master over its control socket and
 * prints the reply, as a table for people or as JSON (`--json`). Exit status: 0 done, 1 the master refused the
 * command or cannot be reached, 2 a usage error (unknown command, bad option).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { resolveSettings } from './config.ts';
import { ControlUnreachable, sendControlRequest } from './control-client.ts';
import { COMMAND_NAMES, type MasterStats } from './control-commands.ts';
import { controlSocketPath, defaultControlDir, isDefaultControlName } from './control-socket-path.ts';
import { formatHelp, formatResult, formatStats } from './ctl-format.ts';

const USAGE = `Usage: tsgunicorn ctl [--socket PATH] [--json] [-c CONFIG] [-p/--pid FILE] [-n/--name NAME] COMMAND [ARGS]

Without --socket, the control socket is found as the server finds it, from the same -c, --pid and --name
(and the config file and TSGUNICORN_CMD_ARGS). Commands (tsgunicorn ctl help describes them):
  ${COMMAND_NAMES.join(', ')}`;

/** What the command line of `tsgunicorn ctl` holds. */
interface CtlOptions {
  socket?: string;
  json: boolean;
  config?: string;
  pid?: string;
  name?: string;
}

class UsageError extends Error {}

/** Thrown when the socket cannot be found: one line, exit 1. */
class NoSocket extends Error {}

/** Runs `tsgunicorn ctl` with the words after `ctl`; resolves with the exit status. */
export async function runCtl(argv: string[], env: Record<string, string | undefined>, cwd: string): Promise<number> {
  try {
    const { options, words, help } = parseCtlArgs(argv);
    if (help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const command = COMMAND_NAMES.find((name) => name.split(' ').every((word, i) => words[i] === word));
    if (!command) throw new UsageError(`unknown command "${words.join(' ')}" (commands: ${COMMAND_NAMES.join(', ')})`);
    const file = await findSocket(options, env, cwd);
    const reply = await sendControlRequest(file, { id: 1, command, args: words.slice(command.split(' ').length) });
    if (options.json) process.stdout.write(`${JSON.stringify(reply.ok ? reply.result : { error: reply.error })}\n`);
    if (!reply.ok) {
      process.stderr.write(`tsgunicorn ctl: ${reply.error}\n`);
      return 1;
    }
    if (!options.json) process.stdout.write(`${formatReply(command, reply.result)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tsgunicorn ctl: ${error.message}\n`);
      return 2;
    }
    if (error instanceof ControlUnreachable || error instanceof NoSocket) {
      process.stderr.write(`tsgunicorn ctl: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

function parseCtlArgs(argv: string[]): { options: CtlOptions; words: string[]; help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        socket: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string', short: 'c' },
        pid: { type: 'string', short: 'p' }, name: { type: 'string', short: 'n' }, help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
  const { values, positionals } = parsed;
  if (!values.help && positionals.length === 0) throw new UsageError('no COMMAND given (tsgunicorn ctl --help)');
  return { options: { ...values, json: Boolean(values.json) }, words: positionals, help: Boolean(values.help) };
}

/**
 * The socket to talk to: --socket, else the server's rule (control-socket-path.ts) on the settings -c, --pid and
 * --name give. When nothing names the server (no --pid, --name or app) and `tsgunicorn.ctl` is not there, the
 * only `tsgunicorn-*.ctl` of the default directory is taken, so that `tsgunicorn ctl stats` finds a server
 * started as `tsgunicorn app.ts`.
 */
async function findSocket(options: CtlOptions, env: Record<string, string | undefined>, cwd: string): Promise<string> {
  if (options.socket) return path.resolve(cwd, options.socket);
  const argv = [
    ...(options.config ? ['-c', options.config] : []), ...(options.pid ? ['--pid', options.pid] : []),
    ...(options.name ? ['--name', options.name] : []),
  ];
  let settings;
  try {
    settings = await resolveSettings({ argv, env, cwd });
  } catch (error) {
    throw new NoSocket((error as Error).message);
  }
  const file = controlSocketPath(settings, env, cwd);
  const named = settings.controlSocket || settings.pidfile || settings.procName || settings.app;
  if (named || fs.existsSync(file)) return file;
  const dir = defaultControlDir(env);
  const found = (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter(isDefaultControlName);
  if (found.length === 1) return path.join(dir, found[0]);
  if (found.length > 1) throw new NoSocket(`several control sockets in ${dir} (${found.join(', ')}): give --name or --socket`);
  throw new NoSocket(`no control socket at ${file} (is the server running? --socket, --pid or --name say where)`);
}

function formatReply(command: string, result: unknown): string {
  if (command === 'stats') return formatStats(result as MasterStats);
  if (command === 'help') return formatHelp(result as { command: string; doc: string }[]);
  return formatResult(result);
}
