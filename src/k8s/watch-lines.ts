// Incremental parser for watch streams: newline-delimited JSON where one event may be split
// across many chunks (or be larger than any chunk) and one chunk may hold many events.

export class JsonLines {
  #parts: Buffer[] = [];

  /** Feeds one chunk; returns the complete lines it finished, parsed. Throws on invalid JSON. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      start = nl + 1;
      const text = line.toString('utf8').trim();
      if (text !== '') out.push(JSON.parse(text));
    }
    if (start < chunk.length) this.#parts.push(chunk.subarray(start));
    return out;
  }

  /** Whatever is left at the end of the stream (a last line without a newline). */
  end(): unknown[] {
    const rest = Buffer.concat(this.#parts).toString('utf8').trim();
    this.#parts = [];
    return rest === '' ? [] : [JSON.parse(rest)];
  }
}
