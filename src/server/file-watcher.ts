// Watches a set of files for content changes: a watch on each file's directory (Kubernetes swaps
// mounted Secrets and ConfigMaps by replacing a `..data` symlink, which a watch on the file itself
// misses) plus a slow poll as a safety net. Calls `onChange` with the new contents when any file's
// bytes differ from the last version seen; bursts of events coalesce into one check.

import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { InputFileError, readInputFile } from '../config/read-input.js';

export class FileSetWatcher {
  readonly #files: readonly string[];
  readonly #onChange: (contents: Buffer[]) => void;
  readonly #watchers: FSWatcher[] = [];
  readonly #poll: NodeJS.Timeout;
  #last: string | undefined;
  #checking: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #onRefused: ((message: string) => void) | undefined;
  /** The last refusal reported, so a file that stays refused is reported once, not every poll. */
  #lastRefusal: string | undefined;

  /**
   * `initial`: the contents in force now; without it the first read becomes the baseline and only
   * later changes are reported.
   */
  constructor(
    files: readonly string[],
    onChange: (contents: Buffer[]) => void,
    pollMs = 5000,
    initial?: readonly Buffer[],
    onRefused?: (message: string) => void,
  ) {
    this.#files = files;
    this.#onChange = onChange;
    this.#onRefused = onRefused;
    if (initial !== undefined) this.#last = fingerprint(initial);
    for (const dir of new Set(files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, () => void this.check());
        w.on('error', () => undefined); // the poll carries on if the directory goes away
        this.#watchers.push(w);
      } catch {
        // no watch support or no directory yet: the poll covers it
      }
    }
    this.#poll = setInterval(() => void this.check(), pollMs);
    this.#poll.unref();
    void this.check();
  }

  /** Re-reads the files; resolves when the check (and any it coalesced) is done. */
  check(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#checking !== undefined) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        await this.#checkOnce();
      } while (this.#again && !this.#closed);
      this.#checking = undefined;
    })();
    return this.#checking;
  }

  async #checkOnce(): Promise<void> {
    let contents: Buffer[];
    try {
      // Bounded reads: a file swapped for a FIFO, a device or a huge file is refused, never waited on.
      contents = await Promise.all(this.#files.map((f) => readInputFile(f, 'file')));
    } catch (err) {
      // Not a regular file or too large: say so once. Mid-swap or missing: keep what is in force
      // quietly; the next event or poll retries either way.
      if (err instanceof InputFileError && !/: (no such file|permission denied)$/.test(err.message) && err.message !== this.#lastRefusal) {
        this.#lastRefusal = err.message;
        if (!this.#closed) this.#onRefused?.(err.message);
      }
      return;
    }
    this.#lastRefusal = undefined;
    const now = fingerprint(contents);
    const first = this.#last === undefined;
    if (now === this.#last) return;
    this.#last = now;
    if (!first && !this.#closed) this.#onChange(contents);
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers) w.close();
    clearInterval(this.#poll);
  }
}

function fingerprint(contents: readonly Buffer[]): string {
  return contents.map((c) => c.toString('base64')).join('|');
}
