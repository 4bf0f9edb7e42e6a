/**
 * The master's control socket (Gunicorn 25's control server): a unix socket, mode 0600 by default, on which
 * `tsgunicorn ctl` sends framed JSON commands (control-protocol.ts) that control-commands.ts runs. It replaces a
 * stale file left by a dead master, refuses to take a live master's socket, and removes its file at exit.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type ControlledMaster, ControlCommandError, runControlCommand } from './control-commands.ts';
import { asControlRequest, type ControlReply, encodeFrame, FrameError, FrameReader } from './control-protocol.ts';
import type { Logger } from './glogging.ts';
import { withUmask } from './privileges.ts';

/** A client that sends nothing for this long is disconnected. */
const IDLE_MS = 60_000;

/**
 * Whether the unix socket `file` is stale: nothing listens on it (connecting is refused). A socket we may not
 * connect to (another user's) is not taken for stale.
 */
function isStale(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(file);
    probe.on('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/** The inode of `file`, or undefined when it is gone. */
function inodeOf(file: string): number | undefined {
  try {
    return fs.lstatSync(file).ino;
  } catch {
    return undefined;
  }
}

/** The master's control socket. */
export class ControlServer {
  /** Where the socket is now (a USR2 master's `<path>.2` is renamed on promotion). */
  file: string;
  private readonly server: net.Server;
  /** The inode bound: the file is removed only while it is still this socket. */
  private inode?: number;
  private readonly master: ControlledMaster;
  /** The arbiter's logger of the moment (a HUP may replace it). */
  private readonly logger: () => Logger;

  constructor(file: string, master: ControlledMaster, logger: () => Logger) {
    this.file = file;
    this.master = master;
    this.logger = logger;
    this.server = net.createServer((socket) => this.serve(socket));
  }

  /**
   * Binds `file` with `mode` (no other user may connect in between: it is bound under a umask that leaves only
   * the owner's bits). A file there from a dead master is replaced; one a live master serves is left alone and
   * this master runs without a control socket (one warning line), as it does when the directory is not writable.
   */
  async open(mode: number): Promise<boolean> {
    const { file } = this;
    try {
      const stat = fs.lstatSync(file, { throwIfNoEntry: false });
      if (stat && !stat.isSocket()) throw new Error('a file that is not a socket is in the way');
      if (stat && !(await isStale(file))) throw new Error('another live master serves it (or it is another user\'s): stop that one, or give --control-socket');
      if (stat) fs.rmSync(file, { force: true });
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      await withUmask(0o177, () => new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(file, () => {
          this.server.off('error', reject);
          resolve();
        });
      }));
      fs.chmodSync(file, mode);
      this.inode = inodeOf(file);
    } catch (error) {
      this.logger().warning(`No control socket at ${file}: ${(error as Error).message}`);
      return false;
    }
    this.logger().info(`Control socket at ${file}`);
    return true;
  }

  /** Moves the socket file (a USR2 master promoted: `<path>.2` becomes the path). */
  rename(file: string): void {
    try {
      fs.renameSync(this.file, file);
      this.file = file;
    } catch (error) {
      this.logger().warning(`Cannot move the control socket ${this.file} to ${file}: ${(error as Error).message}`);
    }
  }

  /** Stops listening and removes the file if it is still this socket. */
  close(): void {
    if (this.inode === undefined) return;
    this.server.close();
    // Closing removes the path the socket was bound to, not one it was renamed to since.
    if (inodeOf(this.file) === this.inode) fs.rmSync(this.file, { force: true });
    this.inode = undefined;
  }

  /** Reads one client's frames and answers each in order; bad input gets an error reply, never a crash. */
  private serve(socket: net.Socket): void {
    const reader = new FrameReader();
    let queue = Promise.resolve();
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      let values;
      try {
        values = reader.push(chunk);
      } catch (error) {
        socket.end(encodeFrame({ id: null, ok: false, error: (error as Error).message } satisfies ControlReply));
        socket.pause();
        return;
      }
      for (const value of values) queue = queue.then(() => this.answer(socket, value));
    });
  }

  private async answer(socket: net.Socket, value: unknown): Promise<void> {
    const request = asControlRequest(value);
    if (request instanceof FrameError) {
      socket.write(encodeFrame({ id: null, ok: false, error: request.message } satisfies ControlReply));
      return;
    }
    const { id } = request;
    // A client's words must not break the log into lines.
    this.logger().info(`Control: ${[request.command, ...request.args].join(' ').replace(/[\x00-\x1f\x7f]/g, '?')}`);
    try {
      const outcome = runControlCommand(this.master, request);
      const reply = encodeFrame({ id, ok: true, result: outcome.result } satisfies ControlReply);
      await new Promise<void>((resolve) => socket.write(reply, () => resolve()));
      outcome.afterReply?.();
    } catch (error) {
      if (!(error instanceof ControlCommandError)) this.logger().exception('Control command failed', error);
      socket.write(encodeFrame({ id, ok: false, error: (error as Error).message } satisfies ControlReply));
    }
  }
}
