// Hot reload of a router's dtabFile: watch the file's directory (Kubernetes swaps ConfigMap
// mounts by replacing a `..data` symlink, which a watch on the file itself would miss) plus a
// slow poll as a safety net. A valid new version applies to new requests; a bad one is logged
// with file:line:col, counted, and the old one stays in force.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Dtab } from '../dtab/dtab.js';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { DtabParseError, parseDtab } from '../dtab/parse.js';
import type { Logger } from '../log.js';
import type { Var } from '../namer/var.js';

export interface DtabWatcherOptions {
  readonly file: string;
  readonly dtab: Var<Dtab>;
  /** The text the current dtab was parsed from. */
  readonly initialText: string;
  readonly logger: Logger;
  readonly pollMs?: number;
  /** Called once per rejected version (the metric `hostmesh_dtab_reload_failures_total`). */
  readonly onReject?: (message: string) => void;
  readonly onApply?: (dtab: Dtab) => void;
}

export class DtabWatcher {
  readonly #o: DtabWatcherOptions;
  #text: string;
  #rejected: string | undefined;
  #watcher: FSWatcher | undefined;
  readonly #poll: NodeJS.Timeout;
  #checking: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** Versions applied and rejected since start (for tests and the admin page). */
  applied = 0;
  rejected = 0;

  constructor(options: DtabWatcherOptions) {
    this.#o = options;
    this.#text = options.initialText;
    try {
      this.#watcher = watch(dirname(options.file), () => this.check());
      this.#watcher.on('error', () => undefined); // the poll carries on if the directory goes away
    } catch {
      this.#watcher = undefined;
    }
    this.#poll = setInterval(() => this.check(), options.pollMs ?? 2000);
    this.#poll.unref();
  }

  /** Re-reads the file (coalescing bursts of events); resolves when the check is done. */
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
    let text: string;
    try {
      text = await readFile(this.#o.file, 'utf8');
    } catch {
      return; // mid-swap or deleted: keep the current dtab; the next event or poll retries
    }
    if (text === this.#text || text === this.#rejected) return;
    try {
      const dtab = parseDtab(text);
      this.#text = text;
      this.#rejected = undefined;
      this.#o.dtab.set(dtab);
      this.applied++;
      this.#o.onApply?.(dtab);
      this.#o.logger.info({ file: this.#o.file, dentries: dtab.dentries.length }, 'dtab reloaded');
    } catch (err) {
      if (!(err instanceof DtabParseError)) throw err;
      this.#rejected = text;
      this.rejected++;
      const message = formatDtabFileError(this.#o.file, text, err);
      this.#o.onReject?.(message);
      this.#o.logger.error({ file: this.#o.file, error: message }, 'dtab reload rejected; the previous dtab stays in force');
    }
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
  }
}
