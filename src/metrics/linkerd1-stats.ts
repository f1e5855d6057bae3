// Linkerd 1's per-router stats tree (rt/<router>/server|service|client/<id>/...), kept beside
// hostmesh's own metrics so dashboards and alerts written for Linkerd 1 keep working. The request
// path only counts (a few map lookups and increments); names, summaries and formats are worked
// out at scrape time (linkerd1-format.ts).

/** Latency samples kept per scope: quantiles are over the last this many requests. */
export const LATENCY_SAMPLES = 1024;
/** Scopes of one kind per router (services, clients) before further ones share the `overflow` scope. */
export const MAX_SCOPES = 500;
/** Services kept per client (Linkerd 1's rt/<r>/client/<id>/service/<path>). */
export const MAX_CLIENT_SERVICES = 16;
export const OVERFLOW_SCOPE = 'overflow';

/** One Linkerd 1 stats scope: requests, success, failures, status codes, request latency. */
export class ScopeStats {
  requests = 0;
  success = 0;
  failures = 0;
  /** Count by status code (100..599; anything else counted under 0): at most 501 keys. */
  readonly status = new Map<number, number>();
  readonly #latency = new Float64Array(LATENCY_SAMPLES);
  #n = 0;

  record(status: number, ms: number): void {
    this.requests++;
    // Linkerd 1's default classifier for HTTP: 5XX (and no response) is a failure.
    if (status >= 500 || status < 100) this.failures++;
    else this.success++;
    const code = status >= 100 && status < 600 ? status : 0;
    this.status.set(code, (this.status.get(code) ?? 0) + 1);
    this.#latency[this.#n++ % LATENCY_SAMPLES] = ms;
  }

  /** Counts by class (`2XX`), worked out from the codes at scrape time. */
  statusClasses(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [code, n] of this.status) {
      if (code === 0) continue;
      const cls = `${Math.floor(code / 100)}XX`;
      out.set(cls, (out.get(cls) ?? 0) + n);
    }
    return out;
  }

  /** The latency samples held (the last LATENCY_SAMPLES requests), sorted. */
  latencySorted(): Float64Array {
    const n = Math.min(this.#n, LATENCY_SAMPLES);
    return this.#latency.slice(0, n).sort();
  }
}

/** A bound client's scope, with its per-service scopes. */
export class ClientScope extends ScopeStats {
  readonly services = new Map<string, ScopeStats>();
  /** Endpoints failure accrual marked dead. */
  removals = 0;
}

/** Linkerd 1's scope name of a path or bound id: its text without the leading slash. */
export function scopeName(name: string): string {
  return name.startsWith('/') ? name.slice(1) : name;
}

function bounded<V>(map: Map<string, V>, key: string, max: number, make: () => V): V {
  let v = map.get(key);
  if (v !== undefined) return v;
  const k = map.size >= max ? OVERFLOW_SCOPE : key;
  v = map.get(k);
  if (v === undefined) {
    v = make();
    map.set(k, v);
  }
  return v;
}

/** One router's Linkerd 1 scopes. */
export class Linkerd1RouterStats {
  /** By `<ip>/<port>` as Linkerd 1 labelled servers. */
  readonly servers = new Map<string, ScopeStats>();
  /** By logical name without the leading slash (`svc/world`). */
  readonly services = new Map<string, ScopeStats>();
  /** By bound id without the leading slash (`#/io.l5d.k8s/default/http/world`). */
  readonly clients = new Map<string, ClientScope>();

  /**
   * A request answered (status 499 when no response was sent). `service` and `client` are the
   * logical name and the bound id when the request got that far; `server` the listener's label.
   */
  record(server: string | undefined, service: string | undefined, client: string | undefined, status: number, ms: number): void {
    if (server !== undefined) bounded(this.servers, server, MAX_SCOPES, () => new ScopeStats()).record(status, ms);
    const svcName = service !== undefined ? scopeName(service) : undefined;
    if (svcName !== undefined) bounded(this.services, svcName, MAX_SCOPES, () => new ScopeStats()).record(status, ms);
    if (client !== undefined) {
      const c = this.client(client);
      c.record(status, ms);
      if (svcName !== undefined) bounded(c.services, svcName, MAX_CLIENT_SERVICES, () => new ScopeStats()).record(status, ms);
    }
  }

  client(id: string): ClientScope {
    return bounded(this.clients, scopeName(id), MAX_SCOPES, () => new ClientScope());
  }
}
