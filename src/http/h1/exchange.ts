/**
 * One request on an HTTP/1.1 connection: its parsed head, and its body as the ReadableStream the Fetch Request
 * reads, fed by the parser with backpressure (reading pauses until the app asks for more).
 */
import type { RequestHead } from './request-parser.ts';

/** What an exchange's body stream needs from its connection. */
export interface BodySource {
  /** Stops reading from the socket until resumeReading(). */
  pauseReading(): void;
  resumeReading(): void;
  /** The app has started reading a body the client sends only after `100 Continue`. */
  sendContinue(exchange: Exchange): void;
}

/** A request head and the state of its body. */
export class Exchange {
  readonly head: RequestHead;
  /** The body as the Request reads it; undefined when the request has none or the method cannot carry one. */
  readonly body?: ReadableStream<Uint8Array>;
  /** Aborts the Request's signal when the client goes away before the response is sent. */
  readonly abort = new AbortController();
  /** Whether the parser has seen the end of this message. */
  complete = false;
  /** The client waits for `100 Continue` before it sends the body. */
  expectsContinue = false;
  private controller?: ReadableStreamDefaultController<Uint8Array>;

  constructor(head: RequestHead, source: BodySource, streamBody: boolean) {
    this.head = head;
    if (!streamBody) return;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      pull: () => {
        if (this.expectsContinue) {
          this.expectsContinue = false;
          source.sendContinue(this);
        }
        source.resumeReading();
      },
      cancel: () => {
        this.controller = undefined;
        source.resumeReading();
      },
      // Nothing is queued ahead of the app: every chunk pauses reading until the app reads again.
    }, { highWaterMark: 0 });
  }

  /** A chunk of the body from the parser. */
  pushBody(chunk: Uint8Array, source: BodySource): void {
    const controller = this.controller;
    if (!controller) return;
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) source.pauseReading();
  }

  /** The parser has reached the end of the message. */
  finish(): void {
    this.complete = true;
    this.controller?.close();
    this.controller = undefined;
  }

  /** The body can never complete (malformed, or the connection closed). */
  fail(error: Error): void {
    this.controller?.error(error);
    this.controller = undefined;
  }
}
