// Hot reload of a router's dtabFile: watch the file's directory (Kubernetes swaps ConfigMap
// mounts by replacing a `..data` symlink, which a watch on the file itself would miss) plus a
// slow poll as a safety net. A valid new version applies to new requests; a bad one is logged
// with file:line:col, counted, and the old one stays in force.

import { type Dtab, parseDtab } from '../dtab/dtab.js';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { DtabParseError } from '../dtab/parse.js';
import type { Logger } from '../log.js';
import type { Var } from '../namer/var.js';
import { FileSetWatcher } from '../fs/file-watcher.js';

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
  readonly #files: FileSetWatcher;
  /** Versions applied and rejected since start (for tests and the admin page). */
  applied = 0;
  rejected = 0;

  constructor(options: DtabWatcherOptions) {
    this.#o = options;
    // The baseline is the text the running dtab came from, so a change made between loading the
    // config and starting the watch is still applied.
    this.#files = new FileSetWatcher(
      [options.file],
      ([text]) => this.#apply((text as Buffer).toString('utf8')),
      options.pollMs ?? 2000,
      [Buffer.from(options.initialText)],
      (message) => this.#reject(message),
    );
  }

  /** Re-reads the file now; resolves when the check is done. */
  check(): Promise<void> {
    return this.#files.check();
  }

  #apply(text: string): void {
    try {
      const dtab = parseDtab(text);
      this.#o.dtab.set(dtab);
      this.applied++;
      this.#o.onApply?.(dtab);
      this.#o.logger.info({ file: this.#o.file, dentries: dtab.dentries.length }, 'dtab reloaded');
    } catch (err) {
      // Never the text itself: formatDtabFileError shows an excerpt only of a file that is a dtab.
      // Anything else the parser throws is rejected too: thrown from a watcher it would end the process.
      this.#reject(
        err instanceof DtabParseError
          ? formatDtabFileError(this.#o.file, text, err)
          : `${this.#o.file}: cannot parse: ${String((err as Error).message).split('\n')[0]}`,
      );
    }
  }

  #reject(message: string): void {
    this.rejected++;
    this.#o.onReject?.(message);
    this.#o.logger.error({ file: this.#o.file, error: message }, 'dtab reload rejected; the previous dtab stays in force');
  }

  close(): void {
    this.#files.close();
  }
}
