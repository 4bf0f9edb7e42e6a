/** `tsgunicorn ctl`'s side of the control socket: sends one request and reads its reply. */
import net from 'node:net';
import { type ControlReply, type ControlRequest, encodeFrame, FrameReader } from './control-protocol.ts';

/** How long the master gets to answer. */
const REPLY_TIMEOUT_MS = 10_000;

/** The master could not be reached or did not answer; `message` names the socket. */
export class ControlUnreachable extends Error {}

/** Sends `request` to the control socket at `file` and resolves with the master's reply. */
export function sendControlRequest(file: string, request: ControlRequest): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    const reader = new FrameReader();
    const fail = (why: string) => {
      socket.destroy();
      reject(new ControlUnreachable(`control socket ${file}: ${why}`));
    };
    socket.setTimeout(REPLY_TIMEOUT_MS, () => fail(`no answer within ${REPLY_TIMEOUT_MS / 1000} s`));
    socket.on('error', (error: NodeJS.ErrnoException) => fail(error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
      ? `${error.code === 'ENOENT' ? 'no such file' : 'connection refused'} (is the server running?)`
      : error.message));
    socket.on('connect', () => socket.write(encodeFrame(request)));
    socket.on('data', (chunk: Buffer) => {
      let values;
      try {
        values = reader.push(chunk);
      } catch (error) {
        fail((error as Error).message);
        return;
      }
      if (values.length === 0) return;
      if (values[0] instanceof Error) {
        fail(values[0].message);
        return;
      }
      socket.end();
      resolve(values[0] as ControlReply);
    });
    socket.on('end', () => fail('the master closed the connection'));
  });
}
