// A request body streamed to one attempt after another: the bytes read so far are kept up to a
// bound, so a failed attempt can be followed by another while the body still fits (else never).

import { Readable } from 'node:stream';

/**
 * Reads the client's body once. Each attempt gets a stream that replays what was kept and then
 * continues with the client's bytes as they come; back-pressure goes from the current attempt's
 * stream to the client (pause/resume). Past `limit` bytes nothing more is kept and the body can no
 * longer be sent again: it has been streamed on, as Linkerd 1's retryBufferSize intends.
 */
export class ReplayableBody {
  readonly #req: Readable;
  readonly #limit: number;
  #kept: Buffer[] = [];
  #keptBytes = 0;
  #overflowed = false;
  #ended = false;
  #error: Error | undefined;
  #current: Readable | undefined;
  #attempts = 0;

  constructor(req: Readable, limit: number) {
    this.#req = req;
    this.#limit = limit;
  }

  /** Whether another attempt can be given the whole body. */
  get replayable(): boolean {
    return !this.#overflowed && this.#error === undefined;
  }

  /** Bytes kept for a resend (bounded by the limit). */
  get keptBytes(): number {
    return this.#keptBytes;
  }

  /** No attempt follows: what was kept is let go (the current attempt keeps streaming). */
  settle(): void {
    this.#overflowed = true;
    this.#kept = [];
    this.#keptBytes = 0;
  }

  /** The body for the next attempt; the previous attempt's stream gets nothing more. */
  attempt(): Readable {
    if (this.#attempts > 0 && !this.replayable) throw new Error('the request body was streamed past the retry buffer');
    this.#attempts++;
    const stream = new Readable({
      read: () => {
        if (this.#current === stream) this.#req.resume();
      },
    });
    const previous = this.#current;
    this.#current = stream;
    if (previous !== undefined && !previous.destroyed) previous.destroy();
    for (const chunk of this.#kept) stream.push(chunk);
    if (this.#ended) stream.push(null);
    else if (this.#error !== undefined) stream.destroy(this.#error);
    if (this.#attempts === 1) this.#listen();
    return stream;
  }

  #listen(): void {
    const req = this.#req;
    req.on('data', (chunk: Buffer) => {
      if (!this.#overflowed) {
        if (this.#keptBytes + chunk.length > this.#limit) {
          this.#overflowed = true;
          this.#kept = [];
          this.#keptBytes = 0;
        } else {
          this.#kept.push(chunk);
          this.#keptBytes += chunk.length;
        }
      }
      const s = this.#current;
      if (s !== undefined && !s.destroyed && !s.push(chunk)) req.pause();
    });
    req.once('end', () => {
      this.#ended = true;
      const s = this.#current;
      if (s !== undefined && !s.destroyed) s.push(null);
    });
    req.once('error', (err) => {
      this.#error = err;
      this.#current?.destroy(err);
    });
  }
}
