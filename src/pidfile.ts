/** The master's pidfile: refuses a live pid, written atomically, removed only while it still holds our pid. */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './errors.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A pidfile owned by this process. */
export class Pidfile {
  file: string;

  constructor(file: string) {
    this.file = path.resolve(file);
  }

  /** Writes our pid; throws a ConfigError if the file names another live process. */
  create(pid = process.pid): void {
    const old = this.read();
    if (old && old !== pid && isAlive(old)) {
      throw new ConfigError(`Already running on PID ${old} (or pid file '${this.file}' is stale)`);
    }
    const temporary = `${this.file}.${pid}.tmp`;
    try {
      fs.writeFileSync(temporary, `${pid}\n`, { mode: 0o644 });
      fs.renameSync(temporary, this.file);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw new ConfigError(`cannot write pid file '${this.file}': ${(error as Error).message}`);
    }
  }

  /** The pid the file holds, or undefined. */
  read(): number | undefined {
    try {
      const pid = Number.parseInt(fs.readFileSync(this.file, 'utf8').trim(), 10);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Moves the file to `file` (a USR2 master promoted: `<pidfile>.2` becomes the pidfile). */
  rename(file: string): void {
    const target = path.resolve(file);
    try {
      fs.renameSync(this.file, target);
    } catch {
      // Gone meanwhile: write it anew below.
    }
    this.file = target;
    this.create();
  }

  /** Removes the file if it still holds our pid. */
  unlink(pid = process.pid): void {
    if (this.read() === pid) fs.rmSync(this.file, { force: true });
  }
}
