// Stage 3, concrete: from a tree of bound names to one endpoint: a union member by weight, the
// transformers (daemonset, localnode...), failure accrual's filter, then the load balancer.

import type { NameTree } from '../../../dtab/name-tree.js';
import { HostmeshError } from '../../../errors.js';
import type { BoundName, Endpoint } from '../../../namer/addr.js';
import { pickP2C, pickWeighted, skipDead } from './balancer.js';
import type { RequestContext } from '../../context.js';
import { endpointKey, type EndpointPools } from '../endpoint/endpoint-pool.js';
import type { DrainingPeers } from './draining-peers.js';
import { accrualKey, type FailureAccrual } from './failure-accrual.js';
import type { EndpointTransform } from './transformers.js';
import { WORKLOAD_SERVICE_ACCOUNT } from './delivery.js';

export type BalancerKind = 'p2c' | 'ewma' | 'roundRobin';

export interface ConcreteOptions {
  readonly transforms: readonly EndpointTransform[];
  readonly pools: EndpointPools;
  /** A bound client's own pools (io.l5d.static TLS or pool limits), whose loads the balancer reads; unset: `pools`. */
  readonly poolsFor?: ((client: string) => EndpointPools) | undefined;
  readonly accrual: FailureAccrual;
  /** A bound client's own failure accrual state (a per-prefix failureAccrual); unset: `accrual`. */
  readonly accrualFor?: ((client: string) => FailureAccrual) | undefined;
  /** Peer routers that announced a drain: skipped like dead endpoints, after them (absent: none). */
  readonly drainingPeers?: DrainingPeers | undefined;
  /** How to choose among endpoints (default p2c least-loaded). */
  readonly balancer?: BalancerKind | undefined;
  readonly random?: (() => number) | undefined;
}

/** The concrete choice: the bound name (the client), its first endpoint, and how to pick another. */
export interface Concrete {
  readonly name: BoundName;
  readonly endpoint: Endpoint;
  /** Another endpoint for a requeue or retry, none of `exclude` (endpoint keys) when that is possible. */
  readonly another: (exclude: ReadonlySet<string>) => Endpoint | undefined;
}

export class ConcreteStage {
  readonly #o: ConcreteOptions;
  readonly #load: (pools: EndpointPools, e: Endpoint) => number;
  /** Round robin's position per bound client (Linkerd 1 balances per client); freed with its binding. */
  readonly #rr = new WeakMap<BoundName, number>();

  constructor(options: ConcreteOptions) {
    this.#o = options;
    this.#load =
      options.balancer === 'ewma'
        ? (pools, e) => pools.cost(e)
        : options.balancer === 'roundRobin'
          ? () => 0 // unused: round robin ignores load
          : (pools, e) => pools.load(e);
  }

  choose(tree: NameTree<BoundName>, ctx: RequestContext): Concrete {
    const name = this.leaf(tree, ctx.service);
    const endpoint = this.#endpoint(name, ctx.service);
    return { name, endpoint, another: (exclude) => this.#another(name, exclude, endpoint) };
  }

  /** The bound name a request goes to: a union member by weight, an alternation's first branch. */
  leaf(tree: NameTree<BoundName>, service: string | undefined): BoundName {
    let t = tree;
    for (;;) {
      switch (t.kind) {
        case 'leaf':
          return t.value;
        case 'union': {
          const i = pickWeighted(
            t.members.map((m) => m.weight),
            this.#o.random,
          );
          t = (t.members[i] as { tree: NameTree<BoundName> }).tree;
          break;
        }
        case 'alt':
          t = t.trees[0] ?? { kind: 'neg' };
          break;
        case 'neg':
          throw HostmeshError.of('NO_ROUTE', 'neg', { service: service ?? '?' });
        case 'fail':
          throw HostmeshError.of('NO_ROUTE', 'fail', { service: service ?? '?' });
        case 'empty':
          throw HostmeshError.of('NO_ENDPOINTS', 'empty', { service: service ?? '?' });
      }
    }
  }

  /**
   * The endpoints the balancer chooses among for a bound name, as they are now: after the
   * transformers (in the DaemonSet topology, the peer routers, which is what failure accrual keys).
   * Empty when the name failed. For the admin views, which must show what the balancer skips.
   */
  balanced(name: BoundName): readonly Endpoint[] {
    try {
      return this.#candidates(name).endpoints;
    } catch {
      return [];
    }
  }

  /** The endpoints of a bound name after the transformers, and why none are left if so. */
  #candidates(name: BoundName): { endpoints: readonly Endpoint[]; why: string | undefined } {
    const addr = name.addr.get();
    if (addr.kind === 'failed') throw new HostmeshError('BINDING_FAILED', `${name.id.show()}: ${addr.error.message}`);
    let endpoints: readonly Endpoint[] = addr.kind === 'bound' ? addr.endpoints : [];
    let why: string | undefined;
    for (const transform of this.#o.transforms) {
      const r = transform(endpoints, name);
      endpoints = r.endpoints;
      why ??= r.why;
    }
    return { endpoints, why };
  }

  /** The pools whose in-flight counts (and latencies) are this client's load. */
  #poolsOf(name: BoundName): EndpointPools {
    return this.#o.poolsFor?.(name.id.show()) ?? this.#o.pools;
  }

  /**
   * A requeue or retry stays with the workload the policy decided on: when the first endpoint
   * carries one (the incoming router's delivery check), only endpoints of the same service account.
   */
  #another(name: BoundName, exclude: ReadonlySet<string>, first: Endpoint): Endpoint | undefined {
    let endpoints: readonly Endpoint[];
    try {
      endpoints = this.#candidates(name).endpoints;
    } catch {
      return undefined;
    }
    if (exclude.size > 0) endpoints = endpoints.filter((e) => !exclude.has(endpointKey(e)));
    const sa = first.meta[WORKLOAD_SERVICE_ACCOUNT];
    if (sa !== undefined) endpoints = endpoints.filter((e) => e.meta[WORKLOAD_SERVICE_ACCOUNT] === sa);
    endpoints = this.#alive(name, endpoints);
    if (endpoints.length === 0) return undefined;
    // Least loaded of two (pools' in-flight counts), even under round robin: a resend that moved
    // the rotation on would send every next request to the endpoint that just failed first.
    const pools = this.#poolsOf(name);
    return pickP2C(endpoints, (e) => pools.load(e), this.#o.random);
  }

  /**
   * Failure accrual's filter (the endpoints not marked dead, or all when every one is), then the
   * draining peers' (those not draining, or all left when every one is): a draining router still
   * serves, so it is preferred to a dead endpoint.
   */
  #alive(name: BoundName, endpoints: readonly Endpoint[]): readonly Endpoint[] {
    const client = name.id.show();
    const accrual = this.#o.accrualFor?.(client) ?? this.#o.accrual;
    let alive = endpoints;
    if (accrual.enabled && accrual.deadCount > 0) {
      alive = skipDead(endpoints, (e) => accrual.usable(accrualKey(client, endpointKey(e))));
    }
    return this.#o.drainingPeers?.skipDraining(alive, endpointKey) ?? alive;
  }

  #nextTurn(name: BoundName): number {
    const n = this.#rr.get(name) ?? 0;
    this.#rr.set(name, n + 1);
    return n;
  }

  #endpoint(name: BoundName, service: string | undefined): Endpoint {
    const { endpoints: all, why } = this.#candidates(name);
    const endpoints = this.#alive(name, all);
    const pools = this.#poolsOf(name);
    const chosen =
      this.#o.balancer === 'roundRobin'
        ? endpoints[this.#nextTurn(name) % Math.max(1, endpoints.length)]
        : pickP2C(endpoints, (e) => this.#load(pools, e), this.#o.random);
    if (chosen === undefined) {
      throw new HostmeshError('NO_ENDPOINTS', `no endpoints for ${service ?? '?'} at ${name.id.show()}${why ? `: ${why}` : ''}`);
    }
    return chosen;
  }
}
