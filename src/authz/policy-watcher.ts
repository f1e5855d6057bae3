// Hot reload of the authorization policy file (a mounted ConfigMap), on the shared FileSetWatcher
// as dtabs are: a valid version replaces the policy for new requests once parsed (in a child process,
// off the event loop); a bad one is rejected with file:line:col, counted, and the policy
// in force stays.

import { type Clock, systemClock } from '../core/clock.js';
import { InputFileError, readInputFile } from '../fs/read-input.js';
import type { Logger } from '../log.js';
import { FileSetWatcher } from '../fs/file-watcher.js';
import { parsePolicyOffThread } from './policy-parse.js';
import { type Policy, PolicyError } from './policy.js';

export interface PolicyWatcherOptions {
  readonly file: string;
  /** The policy in force now and the text it was parsed from (see loadPolicyFile). */
  readonly initial: { readonly policy: Policy; readonly text: string };
  readonly logger: Logger;
  readonly pollMs?: number;
  /**
   * Called once per rejected version, and once when the file turns into something that is not a
   * regular file of at most 1 MiB (the metric `hostmesh_policy_reload_failures_total`).
   */
  readonly onReject?: (message: string) => void;
  /** Parse on the event loop instead of in a child process (default false; for callers that cannot start one). */
  readonly parseInline?: boolean;
  /**
   * Heap bound of the parser process (default DEFAULT_PARSER_MEMORY_MB): a policy that needs more is
   * a rejected reload, so a huge file cannot push the router past its container memory limit.
   */
  readonly parserMemoryMb?: number;
  readonly onApply?: (policy: Policy) => void;
  /** For the times the admin page shows; tests pass their own. */
  readonly clock?: Clock;
}

/** What the admin page and tests read about reloads. */
export interface PolicyReloadStatus {
  readonly applied: number;
  readonly rejected: number;
  readonly lastAppliedAt: number | undefined;
  readonly lastRejectedAt: number | undefined;
  /** The latest rejection's problems, until a valid version is applied. */
  readonly lastError: string | undefined;
}

/**
 * Reads and compiles a policy file; throws PolicyError for a bad or unreadable file. Parsed in the
 * parser process like every reload, so the validator never loads on the router's thread.
 */
export async function loadPolicyFile(file: string, parserMemoryMb?: number): Promise<{ policy: Policy; text: string }> {
  let text: string;
  try {
    text = (await readInputFile(file, 'policy')).toString('utf8');
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    throw new PolicyError([err.message]);
  }
  return { policy: await parsePolicyOffThread(text, file, parserMemoryMb), text };
}

export class PolicyWatcher {
  readonly #o: PolicyWatcherOptions;
  readonly #files: FileSetWatcher;
  readonly #now: () => number;
  #closed = false;
  #policy: Policy;
  /** Versions are parsed one after another and applied in the order they were read. */
  #pending: Promise<void> = Promise.resolve();
  #status: PolicyReloadStatus = { applied: 0, rejected: 0, lastAppliedAt: undefined, lastRejectedAt: undefined, lastError: undefined };

  constructor(options: PolicyWatcherOptions) {
    this.#o = options;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
    this.#policy = options.initial.policy;
    // The baseline is the text the policy in force came from, so an edit made between loading and
    // watching is still applied.
    this.#files = new FileSetWatcher(
      [options.file],
      ([text]) => this.#enqueue((text as Buffer).toString('utf8')),
      options.pollMs ?? 2000,
      [Buffer.from(options.initial.text)],
      (message) => this.#reject([message]),
    );
  }

  /** The policy for a new request: read it once per request, so one request sees one version. */
  get policy(): Policy {
    return this.#policy;
  }

  get status(): PolicyReloadStatus {
    return this.#status;
  }

  /** Re-reads the file now; resolves when the check and the parse of what it found are done. */
  async check(): Promise<void> {
    await this.#files.check();
    await this.#pending;
  }

  #enqueue(text: string): void {
    this.#pending = this.#pending.then(() => this.#apply(text));
  }

  async #apply(text: string): Promise<void> {
    let policy: Policy;
    try {
      policy =
        this.#o.parseInline === true
          ? (await import('./parse-policy.js')).parsePolicy(text, this.#o.file)
          : await parsePolicyOffThread(text, this.#o.file, this.#o.parserMemoryMb);
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      this.#reject(err.problems);
      return;
    }
    if (this.#closed) return;
    this.#policy = policy;
    const s = this.#status;
    this.#status = { ...s, applied: s.applied + 1, lastAppliedAt: this.#now(), lastError: undefined };
    this.#o.onApply?.(policy);
    this.#o.logger.info({ file: this.#o.file, rules: policy.ruleCount }, 'policy reloaded');
  }

  #reject(problems: readonly string[]): void {
    if (this.#closed) return;
    const message = problems.join('\n');
    const s = this.#status;
    this.#status = { ...s, rejected: s.rejected + 1, lastRejectedAt: this.#now(), lastError: message };
    this.#o.onReject?.(message);
    this.#o.logger.error({ file: this.#o.file, problems }, 'policy reload rejected; the previous policy stays in force');
  }

  close(): void {
    this.#closed = true;
    this.#files.close();
  }
}
