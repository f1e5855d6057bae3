// The io.l5d.fs namer: a directory with one file per service, one `host port [key=value...]` line per
// endpoint. Files are watched (directory watch, so Kubernetes' `..data` symlink swap is seen) and
// re-read on change; a missing or empty file is neg so dtab alternations fall through, and so is
// one refused as an input (not a regular file, over 1 MiB: fs/read-input.ts), with a warning.
// Entries live while observed (a live binding uses them) and are dropped idleTtl after that (and
// the oldest idle ones past maxIdleNames), so Hosts that name no file cost nothing once their
// bindings are gone; only observed files are polled.

import { BoundedMap } from '../core/bounded-map.js';
import { type Clock, systemClock } from '../core/clock.js';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { InputFileError, readInputFile } from '../fs/read-input.js';
import { DirectoryWatch } from '../fs/file-watcher.js';
import { NEG } from '../dtab/name-tree.js';
import { Path } from '../dtab/path.js';
import type { Addr, BoundName, Endpoint, EndpointMeta, Lookup, Namer, NamerStats } from './addr.js';
import { Var } from './var.js';

export interface FsNamerOptions {
  readonly rootDir: string;
  /** Mounted under `/#`; default /io.l5d.fs. */
  readonly prefix?: Path;
  readonly logger?: Logger;
  /** Re-read every file this often as well as on watch events (watches can miss events). */
  readonly pollMs?: number;
  /** An entry nobody observes is dropped after this long (default 60 s). */
  readonly idleTtlMs?: number;
  /** The clock of idle eviction (tests drive it). */
  readonly clock?: Clock;
  /** Idle entries kept at most (the oldest go first); default 1000. */
  readonly maxIdleNames?: number;
}

const FS_NAMER_IDLE_TTL_MS = 60_000;
const NAMER_MAX_IDLE_NAMES = 1000;

interface Entry {
  readonly name: string;
  readonly lookup: Var<Lookup>;
  readonly addr: Var<Addr>;
  readonly bound: BoundName;
  lastText: string | undefined;
  /** Why the file was last refused (a FIFO, a device, over 1 MiB): warned about once per change. */
  lastRefusal: string | undefined;
  /** When the last observer left (or the entry was made unobserved); undefined while observed. */
  idleSince: number | undefined;
}

const FILE_NAME = /^[A-Za-z0-9_.-]+$/;

/** Parses one service file; bad lines are reported through `warn` and skipped. */
function parseEndpointsFile(text: string, warn: (line: number, message: string) => void): Endpoint[] {
  const endpoints: Endpoint[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [host, portText, ...rest] = line.split(/\s+/);
    const port = Number(portText);
    if (host === undefined || portText === undefined || !/^[0-9]+$/.test(portText) || port < 1 || port > 65535) {
      warn(i + 1, `expected 'host port [key=value...]', got '${line}'`);
      continue;
    }
    const meta: Record<string, string> = {};
    let ok = true;
    for (const kv of rest) {
      const eq = kv.indexOf('=');
      if (eq <= 0) {
        warn(i + 1, `expected key=value, got '${kv}'`);
        ok = false;
        break;
      }
      const key = kv.slice(0, eq);
      meta[key === 'node' ? 'nodeName' : key] = kv.slice(eq + 1);
    }
    if (!ok) continue;
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    endpoints.push({ host: bare, port, meta: meta as EndpointMeta });
  }
  return endpoints;
}

export class FsNamer implements Namer {
  readonly kind = 'io.l5d.fs';
  readonly prefix: Path;
  readonly #rootDir: string;
  readonly #logger: Logger | undefined;
  readonly #entries = new Map<string, Entry>();
  /** Unobserved entries, in the order they became idle (oldest first). */
  readonly #idle: BoundedMap<string, Entry>;
  readonly #watch: DirectoryWatch;
  readonly #idleTtlMs: number;
  readonly #now: () => number;
  /** Entries dropped after idleTtl (hostmesh_namer_evictions_total). */
  evictions = 0;
  /** Address-set changes published (hostmesh_namer_updates_total). */
  updates = 0;
  readonly stale = false;

  constructor(options: FsNamerOptions) {
    this.#rootDir = options.rootDir;
    this.prefix = options.prefix ?? Path.of('io.l5d.fs');
    this.#logger = options.logger;
    this.#idleTtlMs = options.idleTtlMs ?? FS_NAMER_IDLE_TTL_MS;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
    // Insertion order: the oldest idle entry is dropped past maxIdleNames.
    this.#idle = new BoundedMap({
      name: 'fs_namer_idle',
      max: options.maxIdleNames ?? NAMER_MAX_IDLE_NAMES,
      order: 'insertion',
      onEvict: (name, e) => this.#drop(name, e),
    });
    this.#watch = new DirectoryWatch({
      dirs: [this.#rootDir],
      run: () => this.#refreshAll(),
      pollMs: options.pollMs ?? 2000,
      onPoll: () => this.evictIdle(),
      onWatchError: (err, dir) => this.#logger?.warn({ err, dir }, 'fs namer: cannot watch directory; polling only'),
    });
  }

  lookup(path: Path): Var<Lookup> {
    const name = path.elems[0];
    if (name === undefined || !FILE_NAME.test(name) || name.startsWith('.')) {
      return new Var<Lookup>({ kind: 'ok', tree: NEG });
    }
    const residual = path.drop(1);
    const entry = this.#entry(name);
    if (residual.isEmpty) return entry.lookup;
    // A residual path shares the addresses but is its own bound name.
    // Derived lazily: it observes the entry (and so keeps it) only while observed itself.
    const withResidual: BoundName = { id: entry.bound.id, residual, addr: entry.addr };
    return Var.map(entry.lookup, (s): Lookup => (s.kind === 'ok' && s.tree.kind === 'leaf' ? { kind: 'ok', tree: { kind: 'leaf', value: withResidual } } : s));
  }

  /** Entries held now (hostmesh_namer_entries). */
  get size(): number {
    return this.#entries.size;
  }

  stats(): NamerStats {
    return { entries: this.size, evictions: this.evictions };
  }

  /** Drops entries nobody has observed for idleTtl; returns how many. */
  evictIdle(): number {
    const now = this.#now();
    let n = 0;
    for (const [name, e] of this.#idle) {
      if (now - (e.idleSince ?? now) < this.#idleTtlMs) break; // the rest became idle later
      this.#drop(name, e);
      n++;
    }
    return n;
  }

  #drop(name: string, e: Entry): void {
    this.#idle.delete(name);
    if (this.#entries.get(name) === e) this.#entries.delete(name);
    this.evictions++;
  }

  #markIdle(name: string, e: Entry): void {
    e.idleSince = this.#now();
    this.#idle.set(name, e);
  }

  close(): void {
    this.#watch.close();
  }

  #entry(name: string): Entry {
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      const addr = new Var<Addr>({ kind: 'pending' });
      const bound: BoundName = { id: new Path(['#', ...this.prefix.elems, name]), residual: Path.empty, addr };
      const e: Entry = {
        name,
        lookup: new Var<Lookup>(
          { kind: 'pending' },
          {
            onObserved: () => {
              // Unobserved entries are not polled: catch up with the file now.
              // An entry dropped while someone kept its Var comes back rather than going stale.
              const wasIdle = e.idleSince !== undefined;
              e.idleSince = undefined;
              if (this.#idle.get(name) === e) this.#idle.delete(name);
              if (!this.#entries.has(name)) this.#entries.set(name, e);
              if (wasIdle && e.lookup.get().kind !== 'pending' && this.#entries.get(name) === e) void this.#refresh(e);
            },
            onUnobserved: () => {
              if (this.#entries.get(name) === e) this.#markIdle(name, e);
              else e.idleSince = this.#now();
            },
          },
        ),
        addr,
        bound,
        lastText: undefined,
        lastRefusal: undefined,
        idleSince: undefined,
      };
      entry = e;
      this.#entries.set(name, entry);
      this.#markIdle(name, e); // unobserved until a binding subscribes
      void this.#refresh(entry);
    }
    return entry;
  }

  async #refreshAll(): Promise<void> {
    // Only what live bindings use: an idle entry is read again when it is observed again.
    const observed = [...this.#entries.values()].filter((e) => e.idleSince === undefined);
    await Promise.all(observed.map((e) => this.#refresh(e)));
  }

  async #refresh(entry: Entry): Promise<void> {
    const file = join(this.#rootDir, entry.name);
    let text: string | undefined;
    let refusal: string | undefined;
    try {
      // Bounded: a FIFO read would hold a libuv thread for good (four of them stall every file
      // read and DNS lookup of the process) and /dev/zero would be read until memory runs out.
      text = (await readInputFile(file, 'fs namer entry')).toString('utf8');
    } catch (err) {
      text = undefined;
      // A missing file is the ordinary neg; one refused for what it is deserves a word, once.
      if (err instanceof InputFileError && err.code !== 'ENOENT') refusal = err.message;
    }
    if (refusal !== entry.lastRefusal) {
      entry.lastRefusal = refusal;
      if (refusal !== undefined) this.#logger?.warn({ file }, `fs namer: ${refusal}; the name is neg`);
    }
    if (text === entry.lastText && entry.lookup.get().kind !== 'pending') return;
    entry.lastText = text;
    this.updates++;
    const endpoints = text === undefined ? [] : parseEndpointsFile(text, (line, message) => this.#logger?.warn({ file, line }, `fs namer: ${message}`));
    if (endpoints.length === 0) {
      entry.addr.set({ kind: 'neg' });
      entry.lookup.set({ kind: 'ok', tree: NEG });
      return;
    }
    entry.addr.set({ kind: 'bound', endpoints });
    const current = entry.lookup.get();
    if (!(current.kind === 'ok' && current.tree.kind === 'leaf')) {
      entry.lookup.set({ kind: 'ok', tree: { kind: 'leaf', value: entry.bound } });
    }
  }
}
