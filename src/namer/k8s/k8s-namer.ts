// The io.l5d.k8s namer: /#/io.l5d.k8s/<namespace>/<port-name|port-number>/<service>[/<label value>]
// binds to the Service's ready endpoints (EndpointSlices, or v1 Endpoints with `api: endpoints`),
// each tagged with its node. One shared list+watch per namespace and kind, not one per name.
// A missing Service, an unknown port or zero endpoints is neg, so dtab alternations fall through.
// While the API is away the last known endpoints stay in force, marked stale.
// Names live while observed and idleTtl after (the oldest idle ones go past maxIdleNames); a
// namespace's watches live while it has names, and idleTtl after its last name went idle.
// At most maxNamespaces namespaces are watched: past that an idle one is given up, or the name
// fails with a clear error (a request must not open API watches without bound).
// Discovery data is hostile input: objects are reduced to the fields used as they arrive, every
// address is parsed as a canonical IP literal and refused when no pod can hold it (ip-literal.ts);
// a Service's changes are coalesced (one rebuild per coalesceMs at most, slices recomputed only
// when they changed) and its endpoints capped at maxEndpointsPerService.

import { type Cancel, type Clock, every, systemClock } from '../../core/clock.js';
import type { K8sClient, KObject } from '../../k8s/client.js';
import type { BackoffOptions } from '../../k8s/backoff.js';
import { SharedInformers, type Informer } from '../../k8s/informer.js';
import { ENDPOINTS, ENDPOINT_SLICES, SERVICES } from '../../k8s/resources.js';
import { NEG } from '../../dtab/name-tree.js';
import { Path } from '../../dtab/path.js';
import type { Logger } from '../../log.js';
import type { Addr, BoundName, Endpoint, Lookup, Namer, NamerStats } from '../addr.js';
import { Var } from '../var.js';
import {
  endpointsEndpoints,
  exact,
  parsePortRef,
  pickPort,
  projectEndpoints,
  projectService,
  projectSlice,
  sliceEndpoints,
  type EndpointSliceObject,
  type EndpointsObject,
  type PortPick,
  type RefusedAddress,
  type ServiceObject,
} from './endpoints.js';
import { addressGuard } from './ip-literal.js';

export interface K8sNamerOptions {
  readonly client: K8sClient;
  readonly logger: Logger;
  /** Mounted under `/#`; default /io.l5d.k8s. */
  readonly prefix?: Path;
  /** Label key: the path gets a 4th segment, the value the Service's slices must carry. */
  readonly labelSelector?: string;
  /** `endpoints` reads v1 Endpoints (old clusters); default EndpointSlices. */
  readonly api?: 'endpointslices' | 'endpoints';
  readonly backoff?: BackoffOptions;
  /** Namespaces watched at once (2 API watches each); default 32. */
  readonly maxNamespaces?: number;
  /** A name nobody observes is dropped after this long, its namespace with its last name (default 60 s). */
  readonly idleTtlMs?: number;
  /** The clock of idle eviction, watch ages and change coalescing (tests drive it; default systemClock). */
  readonly clock?: Clock;
  /** Idle names kept at most (the oldest go first); default 1000. */
  readonly maxIdleNames?: number;
  /** This node's own addresses: discovery never delivers to them. */
  readonly nodeAddresses?: () => Iterable<string>;
  /** Loopback endpoint addresses are delivered to (a cluster simulated on one machine); default false. */
  readonly allowLoopbackEndpoints?: boolean;
  /** Endpoints published per name at most (the rest are left out, counted); default 5000. */
  readonly maxEndpointsPerService?: number;
  /** A Service's changes within this window are applied together (default 100 ms). */
  readonly coalesceMs?: number;
}

export const K8S_MAX_ENDPOINTS_PER_SERVICE = 5000;
const K8S_COALESCE_MS = 100;

export const K8S_MAX_NAMESPACES = 32;
const K8S_MAX_IDLE_NAMES = 1000;
const K8S_IDLE_TTL_MS = 60_000;

/** API connections a namer needs: two long-lived watches per namespace, plus room for lists. */
export function k8sConnectionsFor(maxNamespaces: number): number {
  return 2 * maxNamespaces + 8;
}

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

interface Entry {
  readonly ns: string;
  readonly svc: string;
  readonly portSegment: string;
  readonly labelValue: string | undefined;
  readonly addr: Var<Addr>;
  readonly lookup: Var<Lookup>;
  readonly bound: BoundName;
  lastKey: string;
  /** When the last observer left (or since creation if never observed); undefined while observed. */
  idleSince: number | undefined;
}

/** The watches of one namespace and every name looked up in it. */
interface NamespaceWatch {
  readonly ns: string;
  readonly services: Informer;
  /** EndpointSlices or v1 Endpoints. */
  readonly endpoints: Informer;
  /** Slices by service name, then by slice name (unused for v1 Endpoints). */
  readonly slicesBySvc: Map<string, Map<string, KObject>>;
  /** Entries by service name. */
  readonly entries: Map<string, Entry[]>;
  readonly release: () => void;
  /** Services changed since their last rebuild, waiting for the coalescing window. */
  readonly dirty: Set<string>;
  /** When each Service with names was last rebuilt (the coalescing window starts there). */
  readonly lastBuild: Map<string, number>;
  cancelFlush: (() => void) | undefined;
  lastEventAt: number | undefined;
  /** When its last name went idle, once it has none; undefined while it has names. */
  emptySince: number | undefined;
}

export class K8sNamer implements Namer {
  readonly kind = 'io.l5d.k8s';
  readonly prefix: Path;
  /** Address-set changes published (hostmesh_namer_updates_total). */
  updates = 0;
  readonly #o: K8sNamerOptions;
  readonly #informers: SharedInformers;
  readonly #namespaces = new Map<string, NamespaceWatch>();
  readonly #maxNamespaces: number;
  readonly #idleTtlMs: number;
  readonly #clock: Clock;
  /** Names dropped after idleTtl (hostmesh_namer_evictions_total). */
  evictions = 0;
  /** Names refused because maxNamespaces were watched (hostmesh_k8s_namespaces_refused_total). */
  refused = 0;
  readonly #stopSweeper: Cancel;
  /** Unobserved names, in the order they became idle (oldest first). */
  readonly #idle = new Set<Entry>();
  readonly #maxIdle: number;
  readonly #maxEndpoints: number;
  readonly #coalesceMs: number;
  /** Addresses refused from discovery data (hostmesh_k8s_endpoint_addresses_refused_total). */
  addressesRefused = 0;
  /** Rebuilds that left endpoints out for maxEndpointsPerService (hostmesh_k8s_endpoints_capped_total). */
  endpointsCapped = 0;
  /** Endpoint sets recomputed for a name (what slice churn costs; tests bound it). */
  rebuilds = 0;
  /** Per projected slice and port pick: its endpoints, computed once per slice version. */
  readonly #sliceMemo = new WeakMap<object, Map<string, { ready: Endpoint[]; fallback: Endpoint[] }>>();
  /** Services whose cap was logged (once each until they fit again). */
  readonly #cappedLogged = new Set<string>();

  constructor(options: K8sNamerOptions) {
    this.#o = options;
    this.#maxNamespaces = options.maxNamespaces ?? K8S_MAX_NAMESPACES;
    this.#idleTtlMs = options.idleTtlMs ?? K8S_IDLE_TTL_MS;
    this.#clock = options.clock ?? systemClock;
    this.#maxIdle = options.maxIdleNames ?? K8S_MAX_IDLE_NAMES;
    this.#maxEndpoints = options.maxEndpointsPerService ?? K8S_MAX_ENDPOINTS_PER_SERVICE;
    this.#coalesceMs = options.coalesceMs ?? K8S_COALESCE_MS;
    const check = addressGuard({
      ...(options.nodeAddresses !== undefined ? { nodeAddresses: options.nodeAddresses } : {}),
      ...(options.allowLoopbackEndpoints === true ? { allowLoopback: true } : {}),
    });
    const keepLabels = [SERVICE_NAME_LABEL, ...(options.labelSelector !== undefined ? [options.labelSelector] : [])];
    const report = (raw: KObject, refused: RefusedAddress[]): void => {
      if (refused.length === 0) return;
      this.addressesRefused += refused.length;
      // Once per object version (projection runs once per list item or watch event), never per request.
      options.logger.warn(
        { namespace: raw.metadata.namespace, object: raw.metadata.name, kind: raw.kind, refused: refused.slice(0, 5), count: refused.length },
        'endpoint addresses refused: not a canonical IP literal, or an address no pod may hold',
      );
    };
    this.#stopSweeper = every(this.#clock, Math.min(30_000, Math.max(1000, this.#idleTtlMs)), () => this.evictIdle());
    this.prefix = options.prefix ?? Path.of('io.l5d.k8s');
    this.#informers = new SharedInformers({
      client: options.client,
      logger: options.logger,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      projectFor: (resource) => {
        if (resource === SERVICES) return (raw) => projectService(raw) as KObject;
        if (resource === ENDPOINT_SLICES)
          return (raw) => {
            const { slice, refused } = projectSlice(raw, check, keepLabels);
            report(raw, refused);
            return slice as unknown as KObject;
          };
        if (resource === ENDPOINTS)
          return (raw) => {
            const { endpoints, refused } = projectEndpoints(raw, check, keepLabels);
            report(raw, refused);
            return endpoints as unknown as KObject;
          };
        return undefined;
      },
    });
  }

  lookup(path: Path): Var<Lookup> {
    const segments = this.#o.labelSelector === undefined ? 3 : 4;
    if (path.elems.length < segments) return new Var<Lookup>({ kind: 'ok', tree: NEG });
    const [ns, portSegment, svc, labelValue] = path.elems.slice(0, segments).map((e) => e.toLowerCase()) as [string, string, string, string | undefined];
    const watch = this.#watch(ns);
    if (watch === undefined) {
      this.refused++;
      const error = new Error(`namespace ${ns} is not watched: ${this.#maxNamespaces} namespaces are in use (namers[].maxNamespaces)`);
      return new Var<Lookup>({ kind: 'failed', error });
    }
    const list = watch.entries.get(svc) ?? [];
    let entry = list.find((e) => e.portSegment === portSegment && e.labelValue === labelValue);
    if (entry === undefined) {
      const addr = new Var<Addr>({ kind: 'pending' });
      // exact(): a spread literal keeps spare slots, and the id lives as long as the name.
      const id = new Path(exact(['#', ...this.prefix.elems, ns, portSegment, svc, ...(labelValue === undefined ? [] : [labelValue])]));
      const e: Entry = {
        ns,
        svc,
        portSegment,
        labelValue,
        addr,
        lookup: new Var<Lookup>(
          { kind: 'pending' },
          {
            onObserved: () => {
              e.idleSince = undefined;
              this.#idle.delete(e);
              this.#adopt(ns, e);
            },
            onUnobserved: () => this.#markIdle(e),
          },
        ),
        bound: { id, residual: Path.empty, addr },
        lastKey: '',
        idleSince: undefined,
      };
      entry = e;
      // A Service's first entry starts a one-slot list (push() on [] would reserve 17 slots).
      if (list.length === 0) watch.entries.set(svc, [entry]);
      else list.push(entry);
      watch.emptySince = undefined;
      this.#refresh(watch, entry);
      this.#markIdle(e); // unobserved until a binding subscribes
    }
    const residual = path.drop(segments);
    if (residual.isEmpty) return entry.lookup;
    // Derived lazily: it observes the entry (and so keeps it) only while observed itself.
    const withResidual: BoundName = { ...entry.bound, residual };
    return Var.map(entry.lookup, (s): Lookup => (s.kind === 'ok' && s.tree.kind === 'leaf' ? { kind: 'ok', tree: { kind: 'leaf', value: withResidual } } : s));
  }

  /** Names held now (hostmesh_namer_entries). */
  get size(): number {
    let n = 0;
    for (const w of this.#namespaces.values()) for (const list of w.entries.values()) n += list.length;
    return n;
  }

  /** Namespaces watched now (hostmesh_k8s_namespaces_watched). */
  watchedNamespaces(): string[] {
    return [...this.#namespaces.keys()];
  }

  /** True when each of `namespaces` that is watched has listed once (readiness of the config's names). */
  stateJson(): object {
    return this.state();
  }

  stats(): NamerStats {
    return {
      entries: this.size,
      evictions: this.evictions,
      namespaces: this.watchedNamespaces().length,
      refused: this.refused,
      addressesRefused: this.addressesRefused,
      endpointsCapped: this.endpointsCapped,
    };
  }

  startupReadiness(): () => boolean {
    const namespaces = this.watchedNamespaces();
    return () => this.syncedFor(namespaces);
  }

  syncedFor(namespaces: readonly string[]): boolean {
    for (const ns of namespaces) {
      const w = this.#namespaces.get(ns);
      if (w !== undefined && (!w.services.synced || !w.endpoints.synced)) return false;
    }
    return true;
  }

  /** Drops names nobody has observed for idleTtl, then the watches of namespaces left empty. */
  evictIdle(): number {
    const now = this.#clock.now();
    let n = 0;
    for (const e of this.#idle) {
      if (now - (e.idleSince ?? now) < this.#idleTtlMs) break; // the rest became idle later
      this.#dropEntry(e);
      n++;
    }
    for (const [ns, w] of this.#namespaces) {
      if (w.entries.size === 0 && now - (w.emptySince ?? now) >= this.#idleTtlMs) {
        w.release();
        this.#namespaces.delete(ns);
      }
    }
    return n;
  }

  #markIdle(e: Entry): void {
    e.idleSince = this.#clock.now();
    this.#idle.delete(e);
    this.#idle.add(e);
    while (this.#idle.size > this.#maxIdle) this.#dropEntry(this.#idle.values().next().value as Entry);
  }

  /** Forgets an idle name; its namespace keeps its watches for idleTtl after its last name went idle. */
  #dropEntry(e: Entry): void {
    this.#idle.delete(e);
    this.evictions++;
    const w = this.#namespaces.get(e.ns);
    if (w === undefined) return;
    const list = w.entries.get(e.svc);
    if (list === undefined || !list.includes(e)) return;
    const rest = list.filter((x) => x !== e);
    if (rest.length === 0) {
      w.entries.delete(e.svc);
      w.lastBuild.delete(e.svc);
      w.dirty.delete(e.svc);
    } else w.entries.set(e.svc, rest);
    if (w.entries.size === 0) w.emptySince = e.idleSince ?? this.#clock.now();
  }

  /** An entry dropped while someone kept its Var, observed again: put it back (watching its namespace again). */
  #adopt(ns: string, e: Entry): void {
    const w = this.#namespaces.get(ns) ?? this.#watch(ns);
    if (w === undefined) {
      this.refused++;
      e.lookup.set({
        kind: 'failed',
        error: new Error(`namespace ${ns} is not watched: ${this.#maxNamespaces} namespaces are in use (namers[].maxNamespaces)`),
      });
      return;
    }
    const list = w.entries.get(e.svc) ?? [];
    if (list.includes(e)) return;
    if (list.some((x) => x.portSegment === e.portSegment && x.labelValue === e.labelValue)) return;
    if (list.length === 0) w.entries.set(e.svc, [e]);
    else list.push(e);
    w.emptySince = undefined;
    e.lastKey = ''; // publish afresh: the value may be a refusal from before
    this.#refresh(w, e);
  }

  /** True when every namespace watched so far has listed once (the router's /ready). */
  get synced(): boolean {
    for (const w of this.#namespaces.values()) if (!w.services.synced || !w.endpoints.synced) return false;
    return true;
  }

  get stale(): boolean {
    for (const w of this.#namespaces.values()) if (w.services.stale || w.endpoints.stale) return true;
    return false;
  }

  /** For /namer_state/io.l5d.k8s.json: what is watched, at which version, how fresh. */
  state(): object {
    return {
      kind: this.kind,
      prefix: this.prefix.show(),
      connection: this.#o.client.connection.describe,
      updates: this.updates,
      limits: { maxNamespaces: this.#maxNamespaces, idleTtlMs: this.#idleTtlMs, refused: this.refused, evictions: this.evictions },
      namespaces: [...this.#namespaces.values()].map((w) => ({
        namespace: w.ns,
        lastEventAt: w.lastEventAt === undefined ? null : new Date(w.lastEventAt).toISOString(),
        names: [...w.entries.values()].flat().map((e) => ({ id: e.bound.id.show(), state: addrSummary(e.addr.get()) })),
        watches: [w.services, w.endpoints].map((i) => ({
          path: i.describe,
          resourceVersion: i.resourceVersion,
          synced: i.synced,
          stale: i.stale,
          lastError: i.lastError ?? null,
          stats: { ...i.stats },
        })),
      })),
    };
  }

  async close(): Promise<void> {
    this.#stopSweeper();
    for (const w of this.#namespaces.values()) w.release();
    this.#namespaces.clear();
    await this.#informers.close();
    await this.#o.client.close();
  }

  /** The namespace's watches, started if needed; undefined when maxNamespaces are in use. */
  #watch(ns: string): NamespaceWatch | undefined {
    let w = this.#namespaces.get(ns);
    if (w !== undefined) return w;
    if (this.#namespaces.size >= this.#maxNamespaces && !this.#giveUpIdleNamespace()) return undefined;
    const services = this.#informers.acquire(SERVICES, ns);
    const endpoints = this.#informers.acquire(this.#o.api === 'endpoints' ? ENDPOINTS : ENDPOINT_SLICES, ns);
    const watch: NamespaceWatch = {
      ns,
      services: services.informer,
      endpoints: endpoints.informer,
      slicesBySvc: new Map(),
      entries: new Map(),
      dirty: new Set(),
      lastBuild: new Map(),
      cancelFlush: undefined,
      lastEventAt: undefined,
      emptySince: undefined,
      release: () => {
        watch.cancelFlush?.();
        watch.cancelFlush = undefined;
        offs.forEach((off) => off());
        services.release();
        endpoints.release();
      },
    };
    w = watch;
    const offs = [
      services.informer.on((e) => {
        watch.lastEventAt = this.#clock.now();
        this.#changed(watch, e.object.metadata.name);
      }),
      endpoints.informer.on((e) => {
        watch.lastEventAt = this.#clock.now();
        if (this.#o.api === 'endpoints') {
          this.#changed(watch, e.object.metadata.name);
          return;
        }
        const svc = e.object.metadata.labels?.[SERVICE_NAME_LABEL];
        const oldSvc = e.type === 'update' ? e.old.metadata.labels?.[SERVICE_NAME_LABEL] : undefined;
        if (oldSvc !== undefined && oldSvc !== svc) {
          const old = watch.slicesBySvc.get(oldSvc);
          old?.delete(e.object.metadata.name);
          if (old?.size === 0) watch.slicesBySvc.delete(oldSvc);
          this.#changed(watch, oldSvc);
        }
        if (svc === undefined) return;
        let slices = watch.slicesBySvc.get(svc);
        if (slices === undefined) {
          slices = new Map();
          watch.slicesBySvc.set(svc, slices);
        }
        if (e.type === 'delete') slices.delete(e.object.metadata.name);
        else slices.set(e.object.metadata.name, e.object);
        if (slices.size === 0) watch.slicesBySvc.delete(svc);
        this.#changed(watch, svc);
      }),
      services.informer.onState(() => this.#refreshAll(watch)),
      endpoints.informer.onState(() => this.#refreshAll(watch)),
    ];
    this.#namespaces.set(ns, watch);
    return watch;
  }

  /** Stops watching the namespace whose names have all been idle longest; false if every one is in use. */
  #giveUpIdleNamespace(): boolean {
    let victim: NamespaceWatch | undefined;
    let victimIdle = Infinity;
    for (const w of this.#namespaces.values()) {
      let latest = w.emptySince ?? -Infinity;
      let inUse = false;
      for (const list of w.entries.values()) {
        for (const e of list) {
          if (e.idleSince === undefined) inUse = true;
          else latest = Math.max(latest, e.idleSince);
        }
      }
      if (!inUse && latest < victimIdle) {
        victim = w;
        victimIdle = latest;
      }
    }
    if (victim === undefined) return false;
    for (const list of victim.entries.values()) {
      for (const e of list) this.#idle.delete(e);
      this.evictions += list.length;
    }
    victim.release();
    this.#namespaces.delete(victim.ns);
    return true;
  }

  #refreshAll(watch: NamespaceWatch): void {
    for (const list of watch.entries.values()) for (const e of list) this.#refresh(watch, e);
  }

  #refreshService(watch: NamespaceWatch, svc: string): void {
    for (const e of watch.entries.get(svc) ?? []) this.#refresh(watch, e);
  }

  /**
   * A Service's objects changed: rebuild its names now if the last rebuild is older than
   * coalesceMs, else once when the window ends (a burst of slice edits costs one rebuild).
   * Services nobody named cost nothing beyond keeping their projected slices.
   */
  #changed(watch: NamespaceWatch, svc: string): void {
    if (!watch.entries.has(svc)) return;
    const last = watch.lastBuild.get(svc);
    const now = this.#clock.now();
    if (!watch.dirty.has(svc) && (last === undefined || now - last >= this.#coalesceMs)) {
      watch.lastBuild.set(svc, now);
      this.#refreshService(watch, svc);
      return;
    }
    watch.dirty.add(svc);
    if (watch.cancelFlush === undefined) {
      const wait = last === undefined ? 0 : Math.max(0, Math.min(this.#coalesceMs, last + this.#coalesceMs - now));
      watch.cancelFlush = this.#clock.schedule(wait, () => this.#flush(watch));
    }
  }

  /** The end of a coalescing window: rebuilds every Service of the namespace that changed in it. */
  #flush(watch: NamespaceWatch): void {
    watch.cancelFlush = undefined;
    if (this.#namespaces.get(watch.ns) !== watch) return;
    const dirty = [...watch.dirty];
    watch.dirty.clear();
    const now = this.#clock.now();
    for (const svc of dirty) {
      watch.lastBuild.set(svc, now);
      this.#refreshService(watch, svc);
    }
  }

  #refresh(watch: NamespaceWatch, entry: Entry): void {
    if (!watch.services.synced || !watch.endpoints.synced) {
      // Pending until the first list, unless the API refused it (403 RBAC, 404): then the name
      // fails at once with the API's reason rather than making requests wait for bindingTimeout.
      // The informer keeps retrying with backoff; a later list replaces the failure.
      const refused = [watch.services, watch.endpoints].find((i) => !i.synced && refusedStatus(i.lastErrorStatus));
      if (refused === undefined) return;
      const key = `refused|${refused.lastError ?? ''}`;
      if (key === entry.lastKey) return;
      entry.lastKey = key;
      entry.lookup.set({
        kind: 'failed',
        error: new Error(`namespace ${watch.ns}: the API refused ${refused.describe}: ${refused.lastError ?? refused.lastErrorStatus}`),
      });
      return;
    }
    const endpoints = this.#endpoints(watch, entry);
    const stale = watch.services.stale || watch.endpoints.stale;
    const key = endpoints === undefined ? 'neg' : `${stale}|${endpoints.map(endpointKey).join(',')}`;
    if (key === entry.lastKey) return;
    entry.lastKey = key;
    this.updates++;
    if (endpoints === undefined) {
      entry.addr.set({ kind: 'neg' });
      entry.lookup.set({ kind: 'ok', tree: NEG });
      return;
    }
    entry.addr.set(stale ? { kind: 'bound', endpoints, stale } : { kind: 'bound', endpoints });
    const current = entry.lookup.get();
    if (!(current.kind === 'ok' && current.tree.kind === 'leaf')) {
      entry.lookup.set({ kind: 'ok', tree: { kind: 'leaf', value: entry.bound } });
    }
  }

  /** The entry's endpoints now, or undefined for neg (no Service, no such port, no endpoint). */
  #endpoints(watch: NamespaceWatch, entry: Entry): Endpoint[] | undefined {
    const service = watch.services.get(watch.ns, entry.svc);
    if (service === undefined) return undefined;
    const pick = pickPort(parsePortRef(entry.portSegment), service as ServiceObject);
    if (pick === undefined) return undefined;
    let endpoints: Endpoint[];
    if (this.#o.api === 'endpoints') {
      const obj = watch.endpoints.get(watch.ns, entry.svc);
      const labelOk = entry.labelValue === undefined || labelOf(obj, this.#o.labelSelector) === entry.labelValue;
      endpoints = labelOk ? endpointsEndpoints(obj as EndpointsObject | undefined, pick) : [];
    } else {
      const slices = [...(watch.slicesBySvc.get(entry.svc)?.values() ?? [])].filter(
        (s) => entry.labelValue === undefined || labelOf(s, this.#o.labelSelector) === entry.labelValue,
      );
      endpoints = this.#union(slices, pick);
    }
    this.rebuilds++;
    const id = `${watch.ns}/${entry.svc}`;
    if (endpoints.length > this.#maxEndpoints) {
      this.endpointsCapped++;
      if (!this.#cappedLogged.has(id)) {
        this.#cappedLogged.add(id);
        this.#o.logger.warn(
          { service: id, endpoints: endpoints.length, kept: this.#maxEndpoints },
          'service has more endpoints than namers[].maxEndpointsPerService: the rest are left out',
        );
      }
      endpoints = endpoints.slice(0, this.#maxEndpoints);
    } else this.#cappedLogged.delete(id);
    return endpoints.length > 0 ? endpoints : undefined;
  }

  /**
   * The endpoints of a Service's slices: each slice's share is computed once per slice version
   * (projected slices are replaced, never changed), so an edit to one slice of 30 recomputes one.
   * Slices are taken in name order, so the cap keeps the same endpoints whatever the event order.
   */
  #union(slices: KObject[], pick: PortPick): Endpoint[] {
    const pickKey = 'number' in pick ? `#${pick.number}` : `=${pick.byName}`;
    slices.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    const ready: Endpoint[] = [];
    const fallback: Endpoint[] = [];
    const seen = new Set<string>();
    for (const s of slices) {
      let memo = this.#sliceMemo.get(s);
      if (memo === undefined) {
        memo = new Map();
        this.#sliceMemo.set(s, memo);
      }
      let share = memo.get(pickKey);
      if (share === undefined) {
        const all = sliceEndpoints([s as unknown as EndpointSliceObject], pick);
        const isReady = all.length > 0 && sliceHasReady(s as unknown as EndpointSliceObject);
        share = isReady ? { ready: all, fallback: [] } : { ready: [], fallback: all };
        memo.set(pickKey, share);
      }
      for (const e of share.ready) {
        const k = `${e.host} ${e.port}`;
        if (!seen.has(k)) {
          seen.add(k);
          ready.push(e);
        }
      }
      if (ready.length === 0) for (const e of share.fallback) fallback.push(e);
    }
    // Copied to their length (exact): the list is kept as the name's bound endpoints.
    if (ready.length > 0) return exact(ready);
    const out: Endpoint[] = [];
    const seenFallback = new Set<string>();
    for (const e of fallback) {
      const k = `${e.host} ${e.port}`;
      if (!seenFallback.has(k)) {
        seenFallback.add(k);
        out.push(e);
      }
    }
    return exact(out);
  }
}

/** An answer that retrying soon will not change (authorization, missing API); 410/429/5xx are transient. */
function refusedStatus(status: number | undefined): boolean {
  return status === 401 || status === 403 || status === 404;
}

/** Whether a slice has a ready endpoint (then sliceEndpoints returned its ready ones, else its serving fallback). */
function sliceHasReady(s: EndpointSliceObject): boolean {
  for (const ep of s.endpoints ?? []) {
    const c = ep.conditions ?? {};
    if (c.ready !== false && c.terminating !== true && (ep.addresses ?? []).length > 0) return true;
  }
  return false;
}

function labelOf(obj: KObject | undefined, key: string | undefined): string | undefined {
  return key === undefined ? undefined : obj?.metadata.labels?.[key]?.toLowerCase();
}

function endpointKey(e: Endpoint): string {
  return `${e.host}:${e.port}@${e.meta.nodeName ?? ''}`;
}

function addrSummary(a: Addr): string {
  return a.kind === 'bound' ? `bound ${a.endpoints.length}${a.stale ? ' (stale)' : ''}` : a.kind;
}
