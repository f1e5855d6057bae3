// An informer: one list+watch of a collection (kind, namespace, selectors) kept as a local cache.
// List, then watch from the list's resourceVersion with bookmarks; a stream that ends is
// re-watched from the last version seen; 410 Gone (HTTP status or ERROR event) re-lists and
// emits only the differences; any other failure backs off (jittered, capped, never shorter than
// the server's Retry-After) and retries. As client-go's reflector, a watch that ends within a
// second without a single event, or a 410 before any event, waits a backoff step first (a proxy
// or server that closes every stream must not make a tight request loop); the backoff is reset only
// by progress (an event). While the API is away the cache is kept and marked stale.

import { type Clock, systemClock } from '../core/clock.js';
import type { Logger } from '../log.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { K8sApiError, type K8sClient, type KObject, MAX_ERROR_MESSAGE_CHARS, type WatchEvent } from './client.js';
import { collectionPath, type Resource } from './resources.js';

export type InformerEvent<T extends KObject> =
  | { readonly type: 'add'; readonly object: T }
  | { readonly type: 'update'; readonly object: T; readonly old: T }
  | { readonly type: 'delete'; readonly object: T };

export interface InformerOptions {
  readonly client: K8sClient;
  readonly resource: Resource;
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  /** Asked of the server per watch, so streams are renewed regularly (default 300-360 s). */
  readonly watchTimeoutSeconds?: number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /**
   * Keeps only what the consumer needs of each object (it must keep metadata name, namespace and
   * resourceVersion): a cluster-wide pod watch holds 5,000 pods in a few MB instead of ~50.
   */
  readonly project?: (raw: KObject) => KObject;
  /** Objects per list page (`limit`); default 500, as client-go's pager. */
  readonly pageSize?: number;
  /** A watch's length is measured, and the hung-watch deadline scheduled, on it (default the system clock). */
  readonly clock?: Clock;
}

/**
 * A watch still open this long after the timeoutSeconds it asked for is hung (a half-open
 * connection, a proxy holding a dead stream): it is aborted and the collection watched again.
 */
const HUNG_WATCH_GRACE_S = 30;

/** A watch that ends sooner than this with no event at all counts as a failure (client-go's rule). */
const SHORT_WATCH_MS = 1000;
/** The longest Retry-After obeyed: a larger one is taken as this. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

class Gone extends Error {}

function keyOf(o: KObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class Informer<T extends KObject = KObject> {
  readonly #o: InformerOptions;
  readonly #path: string;
  readonly #cache = new Map<string, T>();
  readonly #listeners = new Set<(e: InformerEvent<T>) => void>();
  readonly #stateListeners = new Set<() => void>();
  readonly #abort = new AbortController();
  readonly #backoff: Backoff;
  #rv = '';
  #synced = false;
  #stale = false;
  #running: Promise<void> | undefined;
  /** Counters, for tests and metrics. */
  readonly stats = { lists: 0, pages: 0, expiredContinues: 0, watches: 0, shortWatches: 0, hungWatches: 0, gone: 0, errors: 0, events: 0 };
  /** Events the current (or last) watch delivered, bookmarks included. */
  #watchEvents = 0;
  lastError: string | undefined;
  /** HTTP status of the last failure when the API answered one (403: RBAC refused), else undefined. */
  lastErrorStatus: number | undefined;

  constructor(options: InformerOptions) {
    this.#o = options;
    this.#path = collectionPath(options.resource, options.namespace);
    this.#backoff = new Backoff(options.backoff);
  }

  /** What this informer watches, for logs: path and selectors. */
  get describe(): string {
    const sel = [this.#o.labelSelector && `labels ${this.#o.labelSelector}`, this.#o.fieldSelector && `fields ${this.#o.fieldSelector}`]
      .filter(Boolean)
      .join(', ');
    return sel ? `${this.#path} (${sel})` : this.#path;
  }

  /** True once the first list arrived. */
  get synced(): boolean {
    return this.#synced;
  }

  /** True while the API is unreachable after a sync: the cache is the last known state. */
  get stale(): boolean {
    return this.#stale;
  }

  get resourceVersion(): string {
    return this.#rv;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#cache.get(`${namespace ?? ''}/${name}`);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  /** Add/update/delete events from now on. Returns an unsubscribe function. */
  on(listener: (e: InformerEvent<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called when synced or stale change. */
  onState(listener: () => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  start(): this {
    this.#running ??= this.#run();
    return this;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  #project(raw: KObject): T {
    return (this.#o.project === undefined ? raw : this.#o.project(raw)) as T;
  }

  #emit(e: InformerEvent<T>): void {
    this.stats.events++;
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#o.logger.error({ err, informer: this.describe }, 'informer listener failed');
      }
    }
  }

  #setState(synced: boolean, stale: boolean): void {
    if (synced === this.#synced && stale === this.#stale) return;
    this.#synced = synced;
    this.#stale = stale;
    for (const l of this.#stateListeners) l();
  }

  #selectors(): Record<string, string | undefined> {
    return { labelSelector: this.#o.labelSelector, fieldSelector: this.#o.fieldSelector };
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const sleep = this.#o.sleep ?? defaultSleep;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.#relist(signal);
          needList = false;
        }
        const started = (this.#o.clock ?? systemClock).now();
        await this.#watchOnce(signal);
        // A clean end (the server's timeout): re-watch at once from the last version, unless the
        // stream ended at once with nothing in it.
        if (this.#watchEvents === 0 && (this.#o.clock ?? systemClock).now() - started < SHORT_WATCH_MS) {
          this.stats.shortWatches++;
          const delay = this.#backoff.next();
          this.#o.logger.debug({ informer: this.describe, retryInMs: delay }, 'watch ended at once with no event; backing off');
          await sleep(delay, signal);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof Gone) {
          this.stats.gone++;
          this.#o.logger.info({ informer: this.describe, rv: this.#rv }, 'resourceVersion expired (410): re-listing');
          needList = true;
          // Expired before any event since the last list: back off, or a server answering 410 to
          // every watch would be re-listed in a tight loop.
          if (this.#watchEvents === 0) await sleep(this.#backoff.next(), signal);
          continue;
        }
        this.stats.errors++;
        this.lastError = (err as Error).message;
        this.lastErrorStatus = err instanceof K8sApiError ? err.status : undefined;
        if (this.#synced) this.#setState(true, true);
        // Before the first list, consumers learn of the failure too (they may fail names fast).
        else for (const l of this.#stateListeners) l();
        const hinted = err instanceof K8sApiError ? Math.min(err.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS) : 0;
        const delay = Math.max(this.#backoff.next(), hinted);
        this.#o.logger.warn(
          { informer: this.describe, err: (err as Error).message, retryInMs: delay },
          'kubernetes API unavailable; keeping the last known state',
        );
        await sleep(delay, signal);
      }
    }
  }

  /**
   * Lists page by page (each object reduced as it is parsed), then reconciles the cache with the
   * list, emitting only what changed. A continue token that expired (410) restarts the list, as
   * the API asks; after three expiries in a row the list is taken in one (still streamed) request.
   * A page refused with Retry-After (429 from priority and fairness, 5xx) is asked again after
   * that delay, up to ten times, as client-go's rest client does: starting over would make a long
   * list under throttling never finish.
   */
  async #relist(signal: AbortSignal): Promise<void> {
    this.stats.lists++;
    const fresh = new Map<string, T>();
    let cont = '';
    let resourceVersion = '';
    let expired = 0;
    let throttled = 0;
    for (;;) {
      const query = { ...this.#selectors(), ...(expired < 3 ? { limit: String(this.#o.pageSize ?? 500) } : {}), ...(cont !== '' ? { continue: cont } : {}) };
      let page: { resourceVersion: string; continue: string };
      try {
        page = await this.#o.client.listPage(this.#path, query, signal, (raw) => {
          const o = this.#project(raw);
          fresh.set(keyOf(o), o);
        });
      } catch (err) {
        if (err instanceof K8sApiError && err.status === 410 && cont !== '') {
          this.stats.expiredContinues++;
          expired++;
          this.#o.logger.info({ informer: this.describe }, 'list continue token expired (410): listing again from the start');
          fresh.clear();
          cont = '';
          continue;
        }
        if (err instanceof K8sApiError && err.retryAfterMs !== undefined && (err.status === 429 || err.status >= 500) && throttled < 10) {
          throttled++;
          this.#o.logger.info({ informer: this.describe, status: err.status, retryInMs: err.retryAfterMs }, 'list page refused with Retry-After: asking again');
          await (this.#o.sleep ?? defaultSleep)(Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS), signal);
          if (signal.aborted) throw err;
          continue;
        }
        throw err;
      }
      this.stats.pages++;
      throttled = 0;
      if (cont === '') resourceVersion = page.resourceVersion;
      if (page.continue === '') break;
      cont = page.continue;
    }
    const seen = new Set<string>();
    for (const [k, o] of fresh) {
      seen.add(k);
      const old = this.#cache.get(k);
      this.#cache.set(k, o);
      if (old === undefined) this.#emit({ type: 'add', object: o });
      else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.#emit({ type: 'update', object: o, old });
    }
    for (const [k, old] of this.#cache) {
      if (!seen.has(k)) {
        this.#cache.delete(k);
        this.#emit({ type: 'delete', object: old });
      }
    }
    this.#rv = resourceVersion;
    this.#setState(true, false);
  }

  async #watchOnce(signal: AbortSignal): Promise<void> {
    const timeout = this.#o.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 60);
    const hung = new AbortController();
    const stop = (): void => hung.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const cancel = (this.#o.clock ?? systemClock).schedule((timeout + HUNG_WATCH_GRACE_S) * 1000, () => {
      this.stats.hungWatches++;
      hung.abort(new Error(`watch still open ${HUNG_WATCH_GRACE_S} s after its timeoutSeconds (${timeout}): hung, watching again`));
    });
    try {
      await this.#watchStream(timeout, hung.signal);
    } finally {
      cancel();
      signal.removeEventListener('abort', stop);
    }
  }

  async #watchStream(timeout: number, signal: AbortSignal): Promise<void> {
    let events: AsyncIterable<WatchEvent>;
    this.#watchEvents = 0;
    try {
      events = await this.#o.client.watch(
        this.#path,
        { ...this.#selectors(), resourceVersion: this.#rv, allowWatchBookmarks: 'true', timeoutSeconds: String(timeout) },
        signal,
      );
    } catch (err) {
      if (err instanceof K8sApiError && err.status === 410) throw new Gone();
      throw err;
    }
    this.stats.watches++;
    this.#setState(true, false);
    for await (const e of events) {
      if (e.type !== 'ERROR' && this.#watchEvents++ === 0) this.#backoff.reset();
      switch (e.type) {
        case 'BOOKMARK': {
          // Only metadata.resourceVersion is meaningful; a bookmark without one must not reset the
          // version (a watch without it starts "now" and would miss every deletion in between).
          const rv: unknown = e.object.metadata?.resourceVersion;
          if (typeof rv === 'string' && rv !== '') this.#rv = rv;
          break;
        }
        case 'ERROR':
          if (e.object.code === 410) throw new Gone();
          throw new K8sApiError(
            e.object.code ?? 500,
            `watch error: ${String(e.object.message ?? 'unknown').slice(0, MAX_ERROR_MESSAGE_CHARS)}`,
            typeof e.object.reason === 'string' ? e.object.reason.slice(0, MAX_ERROR_MESSAGE_CHARS) : undefined,
            e.object.details?.retryAfterSeconds === undefined ? undefined : e.object.details.retryAfterSeconds * 1000,
          );
        case 'ADDED':
        case 'MODIFIED': {
          const o = this.#project(e.object);
          const k = keyOf(o);
          const old = this.#cache.get(k);
          this.#cache.set(k, o);
          this.#rv = o.metadata.resourceVersion || this.#rv;
          if (old === undefined) this.#emit({ type: 'add', object: o });
          else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.#emit({ type: 'update', object: o, old });
          break;
        }
        case 'DELETED': {
          const o = this.#project(e.object);
          const k = keyOf(o);
          this.#rv = o.metadata.resourceVersion || this.#rv;
          if (this.#cache.delete(k)) this.#emit({ type: 'delete', object: o });
          break;
        }
      }
    }
  }
}

/** One informer per (resource, namespace, selectors), shared by every consumer, refcounted. */
export class SharedInformers {
  readonly #informers = new Map<string, { informer: Informer; refs: number }>();

  constructor(
    private readonly base: Omit<InformerOptions, 'resource' | 'namespace' | 'labelSelector' | 'fieldSelector' | 'project'> & {
      /** The projection of each resource's objects (what the consumers read of them). */
      readonly projectFor?: (resource: Resource) => ((raw: KObject) => KObject) | undefined;
    },
  ) {}

  acquire(resource: Resource, namespace?: string, labelSelector?: string, fieldSelector?: string): { informer: Informer; release: () => void } {
    const key = `${collectionPath(resource, namespace)}?l=${labelSelector ?? ''}&f=${fieldSelector ?? ''}`;
    let entry = this.#informers.get(key);
    if (entry === undefined) {
      const { projectFor, ...base } = this.base;
      const project = projectFor?.(resource);
      const informer = new Informer({
        ...base,
        ...(project !== undefined ? { project } : {}),
        resource,
        ...(namespace !== undefined ? { namespace } : {}),
        ...(labelSelector !== undefined ? { labelSelector } : {}),
        ...(fieldSelector !== undefined ? { fieldSelector } : {}),
      }).start();
      entry = { informer, refs: 0 };
      this.#informers.set(key, entry);
    }
    entry.refs++;
    const e = entry;
    let released = false;
    return {
      informer: e.informer,
      release: () => {
        if (released) return;
        released = true;
        if (--e.refs === 0) {
          this.#informers.delete(key);
          void e.informer.stop();
        }
      },
    };
  }

  get size(): number {
    return this.#informers.size;
  }

  async close(): Promise<void> {
    const all = [...this.#informers.values()];
    this.#informers.clear();
    await Promise.all(all.map((e) => e.informer.stop()));
  }
}
