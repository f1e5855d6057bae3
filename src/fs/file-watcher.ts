// The one way hostmesh watches the file system: a watch on directories plus a slow poll as a safety
// net, with bursts of events coalesced into one run. DirectoryWatch is the primitive (the fs namer
// re-reads its observed entries on it); FileSetWatcher builds on it to report changed contents of a
// fixed set of files (dtab file, TLS certificates, authz policy).

import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { InputFileError, readInputFile } from './read-input.js';

export interface DirectoryWatchOptions {
  /**
   * Watched directories. A directory watch, not a file watch: Kubernetes swaps mounted Secrets and
   * ConfigMaps by replacing a `..data` symlink, which a watch on the file itself misses.
   */
  readonly dirs: readonly string[];
  /** The work done on a watch event or a poll tick; runs one at a time, a burst coalesces into one more run. */
  readonly run: () => Promise<void>;
  /** Watches can miss events: `run` also happens this often. */
  readonly pollMs: number;
  /** Extra work on each poll tick, before `run` (the fs namer's idle eviction). */
  readonly onPoll?: () => void;
  /** A directory that cannot be watched, or whose watch failed; the poll carries on either way. */
  readonly onWatchError?: (err: unknown, dir: string) => void;
}

/** Quiet time after a watch event before the files are read. */
const SETTLE_MS = 100;
/** A burst of events delays the read at most this long. */
const MAX_SETTLE_MS = 1000;

export class DirectoryWatch {
  readonly #run: () => Promise<void>;
  readonly #watchers: FSWatcher[] = [];
  readonly #poll: NodeJS.Timeout;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: DirectoryWatchOptions) {
    this.#run = options.run;
    const onWatchError = options.onWatchError ?? (() => undefined);
    for (const dir of new Set(options.dirs)) {
      try {
        const w = watch(dir, this.#onEvent);
        w.on('error', (err) => onWatchError(err, dir));
        this.#watchers.push(w);
      } catch (err) {
        // no watch support or no directory yet: the poll covers it
        onWatchError(err, dir);
      }
    }
    this.#poll = setInterval(() => {
      options.onPoll?.();
      void this.check();
    }, options.pollMs);
    this.#poll.unref();
  }

  #settle: NodeJS.Timeout | undefined;
  #firstEvent = 0;

  /**
   * A watch event: the work runs once the directory has been quiet for SETTLE_MS (at most
   * MAX_SETTLE_MS after the first event of a burst). A file written in place (truncated, then
   * written) is then read whole rather than empty or half-written, and a directory that changes
   * all the time costs a few reads a second, not one per event.
   */
  readonly #onEvent = (): void => {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#settle === undefined) this.#firstEvent = now;
    else {
      if (now - this.#firstEvent >= MAX_SETTLE_MS) return; // due soon anyway
      clearTimeout(this.#settle);
    }
    this.#settle = setTimeout(() => {
      this.#settle = undefined;
      void this.check();
    }, SETTLE_MS);
    this.#settle.unref();
  };

  /** Runs the work now, or once more after the run in progress; resolves when that is done. */
  check(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#run();
      } while (this.#again && !this.#closed);
      this.#running = undefined;
    })();
    return this.#running;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watchers) w.close();
    clearInterval(this.#poll);
    if (this.#settle !== undefined) clearTimeout(this.#settle);
  }
}

/**
 * Calls `onChange` with the new contents when any file's bytes differ from the last version seen.
 */
export class FileSetWatcher {
  readonly #files: readonly string[];
  readonly #onChange: (contents: Buffer[]) => void;
  readonly #watch: DirectoryWatch;
  #last: string | undefined;
  readonly #onRefused: ((message: string) => void) | undefined;
  /** The last refusal reported, so a file that stays refused is reported once, not every poll. */
  #lastRefusal: string | undefined;
  readonly #emptySettleMs: number;
  /** When a file of the set was first read empty in a row of empty reads (Date.now()), if it is. */
  #emptySince: number | undefined;
  #emptyRecheck: NodeJS.Timeout | undefined;

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
    emptySettleMs = SETTLE_MS,
  ) {
    this.#emptySettleMs = emptySettleMs;
    this.#files = files;
    this.#onChange = onChange;
    this.#onRefused = onRefused;
    if (initial !== undefined) this.#last = fingerprint(initial);
    this.#watch = new DirectoryWatch({ dirs: files.map((f) => dirname(f)), run: () => this.#checkOnce(), pollMs });
    void this.check();
  }

  /** Re-reads the files; resolves when the check (and any it coalesced) is done. */
  check(): Promise<void> {
    return this.#watch.check();
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
        if (!this.#watch.closed) this.#onRefused?.(err.message);
      }
      return;
    }
    this.#lastRefusal = undefined;
    const now = fingerprint(contents);
    const first = this.#last === undefined;
    if (now === this.#last) {
      this.#emptySince = undefined;
      return;
    }
    // A file read empty is most often one being rewritten in place (truncated, not yet written):
    // a new empty version is taken only once it has stayed empty for emptySettleMs, so a dtab is
    // never replaced by an empty one between a truncation and its write, however late the write.
    if (!first && contents.some((c) => c.length === 0)) {
      const at = Date.now();
      this.#emptySince ??= at;
      if (at - this.#emptySince < this.#emptySettleMs) {
        if (this.#emptyRecheck === undefined && !this.#watch.closed) {
          this.#emptyRecheck = setTimeout(() => {
            this.#emptyRecheck = undefined;
            void this.check();
          }, this.#emptySettleMs);
          this.#emptyRecheck.unref();
        }
        return;
      }
    }
    this.#emptySince = undefined;
    this.#last = now;
    if (!first && !this.#watch.closed) this.#onChange(contents);
  }

  close(): void {
    this.#watch.close();
    if (this.#emptyRecheck !== undefined) clearTimeout(this.#emptyRecheck);
  }
}

function fingerprint(contents: readonly Buffer[]): string {
  return contents.map((c) => c.toString('base64')).join('|');
}
