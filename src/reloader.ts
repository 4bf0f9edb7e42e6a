/**
 * `--reload` (development): watches the app's source files and reports, debounced, when some changed, so that
 * the master replaces its workers. The files are the app module and the local modules it imports (its import
 * graph, from esbuild's metafile: bare, `npm:`, `jsr:`, `node:` and URL imports are not followed), the config
 * file and the --reload-extra-file files. The graph is walked again after every change, so that a new import is
 * watched too. While the graph cannot be walked (the app does not parse, or esbuild cannot be loaded), a change
 * to any file beside the watched ones counts as well (dotfiles aside: editors' swap files), so that the fix of a
 * broken import is seen.
 *
 * node:fs.watch on each file's directory (not on the file: an editor that saves by renaming a new file over the
 * old one would end a file watch) reports the changes on Node, Deno and Bun alike.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { HookLog } from './hooks.ts';

/** Changes closer together than this make one reload. */
const DEBOUNCE_MS = 200;
/** Imports esbuild leaves alone: they are not local files. */
const NOT_A_FILE = /^(npm|jsr|node|bun|https?|data|file):/;

/** What to watch, and whom to tell. */
export interface SourceWatcherOptions {
  /** The app module, whose local imports are watched too. */
  entry: string;
  /** Files watched as they are (the config file, --reload-extra-file). */
  files: string[];
  log: HookLog;
  /** Called once changes have settled, with the changed files. */
  onChange(files: string[]): void;
}

/** Watches an app's source files for --reload. */
export class SourceWatcher {
  private readonly options: SourceWatcherOptions;
  /** The files watched (absolute paths). */
  private watched = new Set<string>();
  /** One fs.watch per directory holding a watched file. */
  private readonly directories = new Map<string, fs.FSWatcher>();
  private readonly changed = new Set<string>();
  private debounce?: ReturnType<typeof setTimeout>;
  private closed = false;
  /** The last walk of the import graph failed: any file in the watched directories counts. */
  private graphUnknown = false;
  /** esbuild could not be loaded: said once. */
  private warnedNoEsbuild = false;
  /** The walk in progress: walks run one after another (each stops esbuild's service when it is done). */
  private walking: Promise<void> = Promise.resolve();

  constructor(options: SourceWatcherOptions) {
    this.options = options;
  }

  /** Finds the files and starts watching them. */
  async start(): Promise<void> {
    await this.refresh();
    const beside = this.graphUnknown ? ' and to the files beside them until the app parses' : '';
    this.options.log.info(`Reloading on changes to ${this.watched.size} file(s)${beside} (--reload; for development)`);
    this.options.log.debug(`Watching: ${[...this.watched].join(', ')}`);
  }

  /** Stops watching. */
  close(): void {
    this.closed = true;
    clearTimeout(this.debounce);
    for (const watcher of this.directories.values()) watcher.close();
    this.directories.clear();
  }

  /** Walks the import graph again (after the walk in progress) and watches the directories of the files found. */
  private refresh(): Promise<void> {
    this.walking = this.walking.then(() => this.walk());
    return this.walking;
  }

  private async walk(): Promise<void> {
    const { entry, files } = this.options;
    const graph = await this.importGraph(entry);
    this.graphUnknown = graph === undefined;
    this.watched = new Set([...(graph ?? [...this.watched, entry]), ...files].map((file) => path.resolve(file)));
    if (this.closed) return;
    const needed = new Set([...this.watched].map((file) => path.dirname(file)));
    for (const [directory, watcher] of this.directories) {
      if (needed.has(directory)) continue;
      watcher.close();
      this.directories.delete(directory);
    }
    for (const directory of needed) {
      if (this.directories.has(directory)) continue;
      try {
        const watcher = fs.watch(directory, (_event, name) => this.onEvent(directory, name));
        watcher.on('error', (error) => this.options.log.warning(`--reload: watching ${directory}: ${error.message}`));
        this.directories.set(directory, watcher);
      } catch (error) {
        this.options.log.warning(`--reload: cannot watch ${directory}: ${(error as Error).message}`);
      }
    }
  }

  /**
   * The local files `entry` imports, itself included, from esbuild's metafile (nothing is written); undefined
   * when esbuild cannot be loaded or the app does not parse.
   */
  private async importGraph(entry: string): Promise<string[] | undefined> {
    let esbuild: typeof import('esbuild');
    try {
      esbuild = await import('esbuild');
    } catch (error) {
      if (!this.warnedNoEsbuild) {
        this.options.log.warning(`--reload watches the files beside ${entry} instead of its imports: esbuild cannot ` +
          `be loaded (${(error as Error).message.split('\n')[0]})`);
      }
      this.warnedNoEsbuild = true;
      return undefined;
    }
    const workingDirectory = path.dirname(path.resolve(entry));
    try {
      const { metafile } = await esbuild.build({
        entryPoints: [path.resolve(entry)], absWorkingDir: workingDirectory, bundle: true, write: false, metafile: true,
        platform: 'node', format: 'esm', packages: 'external', logLevel: 'silent',
        plugins: [{
          name: 'not-a-file',
          setup: (build) => build.onResolve({ filter: NOT_A_FILE }, (args) => ({ path: args.path, external: true })),
        }],
      });
      return Object.keys(metafile.inputs)
        .filter((input) => !input.includes('node_modules/') && !input.includes(':'))
        .map((input) => path.resolve(workingDirectory, input));
    } catch {
      // The app does not parse (the workers will say why): keep watching what was found before.
      return undefined;
    } finally {
      // No esbuild service process idles beside the master between changes.
      await esbuild.stop();
    }
  }

  private onEvent(directory: string, name: string | Buffer | null): void {
    if (this.closed || !name) return;
    const file = path.join(directory, name.toString());
    if (!this.watched.has(file) && (!this.graphUnknown || path.basename(file).startsWith('.'))) return;
    this.changed.add(file);
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.settle(), DEBOUNCE_MS);
  }

  /** Changes have settled: watch the graph as it is now, then report. */
  private async settle(): Promise<void> {
    const changed = [...this.changed];
    this.changed.clear();
    await this.refresh();
    if (!this.closed) this.options.onChange(changed);
  }
}
