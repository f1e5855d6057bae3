// Incremental parser for watch streams: newline-delimited JSON where one event may be split
// across many chunks (or be larger than any chunk) and one chunk may hold many events.

export class JsonLines {
  #parts: Buffer[] = [];
  #partBytes = 0;
  readonly #maxLineBytes: number;

  /** `maxLineBytes`: a longer event fails the stream (the API's objects are ~1.5 MB at most). */
  constructor(options: { maxLineBytes?: number } = {}) {
    this.#maxLineBytes = options.maxLineBytes ?? 16 * 1024 * 1024;
  }

  /** Feeds one chunk; returns the complete lines it finished, parsed. Throws on invalid JSON. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#partBytes = 0;
      start = nl + 1;
      const text = line.toString('utf8').trim();
      if (text !== '') out.push(JSON.parse(text));
    }
    if (start < chunk.length) {
      this.#parts.push(chunk.subarray(start));
      this.#partBytes += chunk.length - start;
      if (this.#partBytes > this.#maxLineBytes) throw new Error(`watch event larger than ${this.#maxLineBytes} bytes`);
    }
    return out;
  }

  /** Whatever is left at the end of the stream (a last line without a newline). */
  end(): unknown[] {
    const rest = Buffer.concat(this.#parts).toString('utf8').trim();
    this.#parts = [];
    this.#partBytes = 0;
    return rest === '' ? [] : [JSON.parse(rest)];
  }
}
