/**
 * A connection's first bytes read before any server has the socket (the PROXY protocol header, the HTTP/2
 * preface): what they are decides who gets the connection.
 */
import type net from 'node:net';

/**
 * Feeds `socket`'s data to `decide` until it returns what to do: the reading stops, then that runs (it hands the
 * socket on, or closes it). An error or an end before that just closes the socket.
 */
export function readFirstBytes(socket: net.Socket, decide: (data: Buffer) => (() => void) | undefined): void {
  const stop = () => {
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('end', onError);
  };
  const onError = () => {
    stop();
    socket.destroy();
  };
  const onData = (data: Buffer) => {
    const next = decide(data);
    if (!next) return;
    stop();
    next();
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('end', onError);
}
