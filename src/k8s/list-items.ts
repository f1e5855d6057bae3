// Splits a Kubernetes list response (`{"kind":..,"metadata":{..},"items":[{..},{..}]}`) into its
// items as they stream in, so a consumer parses and reduces one object at a time: a page of 150
// objects of 1.5 MB costs one object's bytes, not the page's. Everything outside `items` (kind,
// metadata with resourceVersion and continue) is kept and parsed at the end; it is small.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

export class ListItemSplitter {
  readonly #maxItemBytes: number;
  #depth = 0;
  #inStr = false;
  #esc = false;
  /** outside: the envelope; between: inside `items`, between elements; item: inside an element. */
  #mode: 'outside' | 'between' | 'item' = 'outside';
  #envelope: Buffer[] = [];
  #envelopeBytes = 0;
  #item: Buffer[] = [];
  #itemBytes = 0;

  /** `maxItemBytes`: an object larger than this fails the list (the API's own limit is ~1.5 MB). */
  constructor(options: { maxItemBytes?: number } = {}) {
    this.#maxItemBytes = options.maxItemBytes ?? 16 * 1024 * 1024;
  }

  /** Feeds a chunk; returns the items it completed, each the bytes of one JSON value. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    let start = 0; // where the current run (envelope or item bytes) began in this chunk
    let i = 0;
    while (i < n) {
      if (this.#inStr) {
        if (this.#esc) {
          this.#esc = false;
          i++;
          continue;
        }
        const q = chunk.indexOf(QUOTE, i);
        if (q === -1) {
          let k = 0;
          for (let j = n - 1; j >= i && chunk[j] === BACKSLASH; j--) k++;
          if (k % 2 === 1) this.#esc = true;
          i = n;
          break;
        }
        let k = 0;
        for (let j = q - 1; j >= i && chunk[j] === BACKSLASH; j--) k++;
        i = q + 1;
        if (k % 2 === 0) this.#inStr = false;
        continue;
      }
      const b = chunk[i] as number;
      if (this.#mode === 'between') {
        if (isSpace(b) || b === 0x2c) {
          i++;
          continue;
        }
        if (b === 0x5d) {
          // ']': the end of items; the envelope resumes here.
          this.#depth--;
          this.#mode = 'outside';
          start = i;
          i++;
          continue;
        }
        this.#mode = 'item';
        start = i;
        this.#item = [];
        this.#itemBytes = 0;
        // fall through to the item scan of this byte
      }
      if (b === QUOTE) {
        this.#inStr = true;
        i++;
        continue;
      }
      if (b === 0x7b || b === 0x5b) {
        // '{' or '['
        if (this.#mode === 'outside' && b === 0x5b && this.#depth === 1 && this.#atItemsKey(chunk, start, i)) {
          this.#appendEnvelope(chunk.subarray(start, i + 1));
          this.#depth++;
          this.#mode = 'between';
          i++;
          continue;
        }
        this.#depth++;
        i++;
        continue;
      }
      if (b === 0x5d && this.#mode === 'item' && this.#depth === 2) {
        out.push(this.#finishItem(chunk, start, i)); // a scalar element ended by ']'
        continue;
      }
      if (b === 0x7d || b === 0x5d) {
        this.#depth--;
        i++;
        if (this.#mode === 'item' && this.#depth === 2) out.push(this.#finishItem(chunk, start, i));
        continue;
      }
      if (this.#mode === 'item' && this.#depth === 2 && (b === 0x2c || isSpace(b))) {
        // the end of a scalar element (null, a number): items are objects, but stay exact
        out.push(this.#finishItem(chunk, start, i));
        continue;
      }
      i++;
    }
    if (this.#mode === 'item') {
      this.#item.push(chunk.subarray(start));
      this.#itemBytes += n - start;
      if (this.#itemBytes > this.#maxItemBytes) throw new Error(`list item larger than ${this.#maxItemBytes} bytes`);
    } else if (this.#mode === 'outside') this.#appendEnvelope(chunk.subarray(start));
    return out;
  }

  /** The envelope (everything but the items), parsed: metadata.resourceVersion, metadata.continue. */
  end(): { metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number } } {
    if (this.#mode !== 'outside' || this.#depth !== 0 || this.#inStr) throw new Error('truncated list response');
    return JSON.parse(Buffer.concat(this.#envelope).toString('utf8')) as { metadata?: { resourceVersion?: string; continue?: string } };
  }

  #finishItem(chunk: Buffer, start: number, end: number): Buffer {
    const tail = chunk.subarray(start, end);
    const item = this.#item.length === 0 ? tail : Buffer.concat([...this.#item, tail]);
    this.#item = [];
    this.#itemBytes = 0;
    if (item.length > this.#maxItemBytes) throw new Error(`list item larger than ${this.#maxItemBytes} bytes`);
    this.#mode = 'between';
    return item;
  }

  #appendEnvelope(b: Buffer): void {
    if (b.length === 0) return;
    this.#envelopeBytes += b.length;
    if (this.#envelopeBytes > 1024 * 1024) throw new Error('list envelope larger than 1 MiB');
    this.#envelope.push(Buffer.from(b));
  }

  /** Whether the envelope so far ends with `"items"` and a colon (this '[' opens the items). */
  #atItemsKey(chunk: Buffer, start: number, i: number): boolean {
    const pieces = [chunk.subarray(start, i)];
    let bytes = i - start;
    for (let k = this.#envelope.length - 1; k >= 0 && bytes < 64; k--) {
      const piece = this.#envelope[k] as Buffer;
      pieces.unshift(piece);
      bytes += piece.length;
    }
    const recent = Buffer.concat(pieces).toString('utf8');
    return /"items"\s*:\s*$/.test(recent);
  }
}
