/**
 * The open WebSockets of one engine, for its drain: upgraded connections count as in flight, so a graceful stop
 * sends each a close frame with 1001 (Going Away) and waits for them to close (the worker's --graceful-timeout
 * bounds the wait).
 */

/** What a drain needs of an open WebSocket, whichever engine serves it. */
export interface ClosableSocket {
  close(code?: number, reason?: string): void;
}

/** The open WebSockets of an engine. */
export class WebSocketSessions<Socket extends ClosableSocket = ClosableSocket> {
  private readonly open = new Set<Socket>();
  private draining = false;
  private onEmpty?: () => void;

  /** A WebSocket has opened; during a drain it is told to go away at once. */
  add(socket: Socket): void {
    this.open.add(socket);
    if (this.draining) socket.close(1001, 'Server shutting down');
  }

  /** A WebSocket has closed. */
  delete(socket: Socket): void {
    if (this.open.delete(socket) && this.draining && this.open.size === 0) this.onEmpty?.();
  }

  /** Sends every open WebSocket close 1001; resolves once they have all closed. */
  drain(): Promise<void> {
    this.draining = true;
    return new Promise((resolve) => {
      this.onEmpty = resolve;
      if (this.open.size === 0) resolve();
      for (const socket of this.open) socket.close(1001, 'Server shutting down');
    });
  }
}
