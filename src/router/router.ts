// One router (Linkerd 1's `routers[]` entry): composes the stages of a request's route,
// identify -> logical -> concrete -> (authorize) -> endpoint -> forward, into one plan that HTTP,
// Upgrade and CONNECT share; the stages live in stages/, one file each.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Cancel, type Clock, every, systemClock } from '../core/clock.js';
import type { Dtab } from '../dtab/dtab.js';
import type { Path } from '../dtab/path.js';
import type { Logger } from '../log.js';
import type { BoundName } from '../namer/addr.js';
import type { NameInterpreter } from '../namer/interpreter.js';
import type { Var } from '../namer/var.js';
import type { Authorize } from './stages/authorize/authorize.js';
import type { RequestContext } from './context.js';
import { formatDeadline, DEADLINE_HEADER } from './deadline.js';
import { endpointKey, type EndpointPools } from './stages/endpoint/endpoint-pool.js';
import { withDelegationPath } from './stages/logical/explain-failure.js';
import { DrainingPeers } from './stages/concrete/draining-peers.js';
import { noRouterEvents, type RouterEvents } from './events.js';
import { accrualClient, accrualConfig, accrualKey, FailureAccrual } from './stages/concrete/failure-accrual.js';
import { buildIdentifiers, type RequestFacts } from './stages/identify/identifiers.js';
import { parsePath } from '../dtab/parse.js';
import { outgoingHeaders } from './stages/forward/outgoing-headers.js';
import { markUndelivered } from './stages/forward/requeue.js';
import { ClientPools } from './stages/endpoint/client-pools.js';
import { classifierOf, DeadCounts, h2ClassifierOf, PerName, requeueBudgetOf, retryPolicyOf } from './settings/per-name.js';
import { RouterParams } from './settings/static-params.js';
import type { ClientSpec } from './settings/spec.js';
import { Plan, type RoutePlan } from './route-plan.js';
import { type BalancerKind, ConcreteStage } from './stages/concrete/concrete.js';
import { EndpointStage } from './stages/endpoint/endpoint.js';
import { ForwardStage } from './stages/forward/forward.js';
import type { UpgradeRequest } from './stages/forward/forward-upgrade.js';
import { type Arrival, type Identified, IdentifyStage, type RequestHead } from './stages/identify/identify.js';
import { type BindingCacheLimits, type Bound, DEFAULT_BINDING_CACHE, LogicalStage } from './stages/logical/logical.js';
import { decrementMaxForwards, traceEcho, traceHere } from './stages/forward/trace.js';
import { assertDecided, type EntryDecision } from './decision.js';
import type { EndpointTransform } from './stages/concrete/transformers.js';
import type { H2Forward } from './stages/forward/forward-h2.js';
import type { H2Sessions } from '../h2/h2-sessions.js';

export interface RouterOptions {
  readonly label: string;
  /** The router's own dtab; a Var so a reloaded dtabFile applies to new requests. */
  readonly dtab: Var<Dtab>;
  readonly interpreter: NameInterpreter;
  readonly transforms: readonly EndpointTransform[];
  readonly pools: EndpointPools;
  readonly logger: Logger;
  readonly maxHops: number;
  readonly random?: () => number;
  /** The router's identifiers (default: Host -> /svc/<host>). */
  readonly identify?: (req: RequestFacts) => { name: Path; target: string };
  /** How to choose among endpoints (default p2c least-loaded). */
  readonly balancer?: BalancerKind;
  /** What the router reports as it routes (events.ts; metrics implement it); default: nothing. */
  readonly events?: RouterEvents;
  /** Most nodes of one delegation tree (the interpreter's default when unset). */
  readonly bindingBudget?: number;
  /** Linkerd 1's bindingTimeoutMs: the wait for a pending binding (default 10 s). */
  readonly bindingTimeoutMs?: number;
  /** Caps and idle TTL of the binding cache (Linkerd 1's bindingCache); defaults in stages/logical/logical.ts. */
  readonly bindingCache?: BindingCacheLimits;
  /** The clock of idle eviction, deadlines, attempt timeouts, retry backoffs, budgets and accrual (tests drive it; default systemClock). */
  readonly clock?: Clock;
  /** The authorization stage (authorize.ts), on the final bound name; absent: everything allowed. */
  readonly authorize?: Authorize;
  /** Peer routers that announced a drain (router/stages/concrete/draining-peers.ts); defaults ttlMs 30 s, max 10,000. */
  readonly drainingPeers?: { readonly ttlMs?: number; readonly max?: number };
  /**
   * The router's settings, the one source every stage reads: its service and client settings
   * (retries, classifier, totalTimeoutMs; requeue budget, requestAttemptTimeoutMs, failure accrual,
   * pools) and Linkerd 1's io.l5d.static prefix configs over them (static-params.ts). Absent: the
   * defaults for every name.
   */
  readonly params?: RouterParams;
  /** Pools per client settings (client-pools.ts), over `pools`; needed when `params` has client prefixes. */
  readonly clientPools?: ClientPools;
}

/** The client settings of a router without prefix configs (nothing but the router's own pools). */
const GLOBAL_CLIENT: ClientSpec = { loadBalancer: { kind: 'p2c' } };

export class Router {
  readonly label: string;
  readonly #o: RouterOptions;
  readonly #identify: IdentifyStage;
  readonly #logical: LogicalStage;
  readonly #concrete: ConcreteStage;
  readonly #forward: ForwardStage;
  readonly #accrual: FailureAccrual;
  readonly #perName: PerName;
  readonly #stopSweeper: Cancel;
  readonly #idleTtlMs: number;
  readonly #events: RouterEvents;
  #inFlight = 0;

  constructor(options: RouterOptions) {
    this.label = options.label;
    this.#o = options;
    const clock = options.clock ?? systemClock;
    const now = (): number => clock.now();
    const events = options.events ?? noRouterEvents;
    this.#events = events;
    const limits = options.bindingCache ?? DEFAULT_BINDING_CACHE;
    this.#idleTtlMs = limits.idleTtlMs;
    this.#identify = new IdentifyStage({
      identify: options.identify ?? buildIdentifiers([{ kind: 'io.l5d.header.token', header: 'Host' }], parsePath('/svc')),
      maxHops: options.maxHops,
      now,
      totalTimeoutMs: (service) => this.#perName.totalTimeoutMs(service),
      events,
    });
    this.#logical = new LogicalStage({
      dtab: options.dtab,
      interpreter: options.interpreter,
      limits,
      now,
      budget: options.bindingBudget,
      waitMs: options.bindingTimeoutMs,
      events,
    });
    // The dead-endpoint gauge sums the router's accrual state and per-prefix ones (per-name.ts).
    const deadCounts = new DeadCounts((dead) => events.accrualDead(dead));
    const params = options.params ?? new RouterParams(undefined, GLOBAL_CLIENT);
    this.#accrual = new FailureAccrual(accrualConfig(params.client.failureAccrual), {
      clock,
      ...(options.random !== undefined ? { random: options.random } : {}),
      onRemoved: accrualRemoved(events),
      onDeadCount: deadCounts.reporter(),
    });
    const drainingPeers = new DrainingPeers({
      ...options.drainingPeers,
      clock,
      events,
    });
    this.#concrete = new ConcreteStage({
      transforms: options.transforms,
      pools: options.pools,
      poolsFor: (client) => this.#perName.client(client).pools,
      accrualFor: (client) => this.#perName.client(client).accrual,
      accrual: this.#accrual,
      drainingPeers,
      balancer: options.balancer,
      random: options.random,
    });
    // Settings per logical name and per bound id: the router's own, or io.l5d.static prefixes' (per-name.ts).
    const perName = new PerName(params, options.clientPools ?? new ClientPools(options.pools, GLOBAL_CLIENT), {
      clock,
      service: { retries: retryPolicyOf(params.service), classify: classifierOf(params.service), classifyH2: h2ClassifierOf(params.service) },
      requeueBudget: requeueBudgetOf(params.client),
      requestAttemptTimeoutMs: params.client.requestAttemptTimeoutMs,
      accrual: this.#accrual,
      accrualOptions: {
        ...(options.random !== undefined ? { random: options.random } : {}),
        onRemoved: accrualRemoved(events),
      },
      deadCounts,
    });
    this.#perName = perName;
    this.#forward = new ForwardStage({
      endpoints: new EndpointStage({ pools: options.pools, accrual: this.#accrual, events }),
      clock,
      drainingPeers,
      service: (name) => perName.service(name),
      client: (id) => perName.client(id),
      random: options.random,
      events,
    });
    this.#stopSweeper = every(clock, Math.min(60_000, Math.max(1000, limits.idleTtlMs)), () => this.evictIdle());
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get dtab(): Dtab {
    return this.#logical.dtab;
  }

  /** The budget explanations of this router's names use (undefined: the interpreter's default). */
  get bindingBudget(): number | undefined {
    return this.#o.bindingBudget;
  }

  /**
   * Routes one HTTP request. `decision` is the request's entry decision (decision.ts): its caller,
   * the claim to send on and the identity l5d-client-id carries; no route is planned without one.
   */
  async handle(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, decision: EntryDecision): Promise<void> {
    assertDecided(decision);
    this.#inFlight++;
    try {
      const arrival = this.#identify.arrive(req, ctx);
      if (traceHere(req)) {
        traceEcho(req, res);
        return;
      }
      // Planned at once when the binding is cached (most requests): no promise, no extra turn.
      const planned = this.#plan(req, arrival, ctx, decision);
      const plan = planned instanceof Promise ? await planned : planned;
      decrementMaxForwards(req, plan.headers as Record<string, string>);
      await this.#forward.forward(req, res, plan, ctx);
    } catch (err) {
      markUndelivered(res, ctx, err);
      throw err;
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * The plan of a request's route without carrying it out: what an Upgrade tunnels and what the
   * HTTP path forwards, made by the same stages.
   */
  plan(req: RequestHead, ctx: RequestContext, decision: EntryDecision): RoutePlan | Promise<RoutePlan> {
    assertDecided(decision);
    return this.#plan(req, this.#identify.arrive(req, ctx), ctx, decision);
  }

  /**
   * The plan: at once when the name's binding is cached and settled, else once it settles. Throws
   * why not. Its two callers (handle, plan) have checked the decision already.
   */
  #plan(req: RequestHead, arrival: Arrival, ctx: RequestContext, decision: EntryDecision): RoutePlan | Promise<RoutePlan> {
    // The entry decision's caller is the one every later stage and the policy see, whatever the path.
    ctx.direction = decision.direction;
    if (decision.caller !== undefined) ctx.caller = decision.caller;
    const id = this.#identify.name(req, arrival, ctx);
    const bound = this.#logical.bind(req.headers, id.service, ctx);
    return bound instanceof Promise
      ? bound.then((b) => this.#planBound(req, arrival, ctx, decision, id, b))
      : this.#planBound(req, arrival, ctx, decision, id, bound);
  }

  #planBound(req: RequestHead, arrival: Arrival, ctx: RequestContext, decision: EntryDecision, id: Identified, bound: Bound): RoutePlan {
    const peerId = decision.clientId;
    const concrete = this.#concrete.choose(bound.tree, ctx);
    const client = concrete.name.id.show();
    // On the incoming router the endpoint carries the workload that answers (delivery.ts): policy decides on it.
    this.#o.authorize?.(req, ctx, client, peerId, concrete.endpoint);
    ctx.client = client;
    if (bound.overrides !== '') this.#events.override();
    const headers = outgoingHeaders(req.headers, {
      host: arrival.host,
      service: id.service.show(),
      client,
      overrides: bound.overrides,
      peerId,
      claim: decision.claim,
    });
    if (id.deadline !== undefined) headers[DEADLINE_HEADER] = formatDeadline(id.deadline.wire);
    // The client's pools: the router's, or a per-prefix client's own (io.l5d.static TLS, limits).
    const pools = this.#perName.client(client).pools;
    return new Plan(
      arrival.method,
      id.service,
      concrete.name,
      concrete.endpoint,
      concrete.another,
      id.target,
      headers,
      id.deadline,
      pools.tls,
      pools.tls ? pools.tlsOptions : undefined,
      pools.limits.connectTimeoutMs,
    );
  }

  /** The HTTP/2 forward stage of an h2 router (stages/forward/forward-h2.ts), over its client sessions. */
  h2Forward(sessions: H2Sessions): H2Forward {
    return this.#forward.h2(sessions);
  }

  /**
   * Carries out a planned Upgrade on the same pools, leases, deadlines and requeues as a request
   * (stages/forward/forward-upgrade.ts): resolves once its tunnel is open or the endpoint's answer relayed.
   */
  upgrade(u: UpgradeRequest, plan: RoutePlan, ctx: RequestContext): Promise<void> {
    return this.#forward.upgrade(u, plan, ctx);
  }

  /** Whether `/svc/<host>` (this router's naming of a Host) binds to at least one endpoint (CONNECT). */
  async binds(host: string): Promise<boolean> {
    try {
      const service = this.#identify.nameOfHost(host);
      const tree = await this.#logical.bindBase(service);
      this.#concrete.choose(tree, { service: service.show() });
      return true;
    } catch {
      return false;
    }
  }

  /** `err` with its delegation path when it is a routing failure (error path only: explain-failure.ts). */
  explainFailure(err: unknown, ctx: RequestContext): unknown {
    return withDelegationPath(err, ctx, this.#o.interpreter);
  }

  /**
   * What this router's clients are bound to now: each bound name, the endpoints its balancer
   * chooses among with their load and failure accrual state (after the transformers: in the
   * DaemonSet topology the peer routers, as accrual keys them), and the addresses the namer bound
   * (`destinations`, before the transformers).
   */
  clientState(): {
    id: string;
    state: string;
    stale: boolean;
    endpoints: { address: string; nodeName: string | null; inFlight: number; ewmaMs: number; accrual: 'alive' | 'dead' | 'probing' }[];
    destinations: { address: string; nodeName: string | null }[];
  }[] {
    return [...this.#logical.boundNames()].map(([id, name]: [string, BoundName]) => {
      const { pools, accrual } = this.#perName.client(id); // a per-prefix client's own
      const a = name.addr.get();
      const destinations = a.kind === 'bound' ? a.endpoints : [];
      return {
        id,
        state: a.kind,
        stale: a.kind === 'bound' && a.stale === true,
        destinations: destinations.map((e) => ({ address: endpointKey(e), nodeName: e.meta.nodeName ?? null })),
        endpoints: this.#concrete.balanced(name).map((e) => ({
          address: endpointKey(e),
          nodeName: e.meta.nodeName ?? null,
          inFlight: pools.load(e),
          ewmaMs: Math.round(pools.cost(e) * 100) / 100,
          accrual: accrual.state(accrualKey(id, endpointKey(e))),
        })),
      };
    });
  }

  /** Drops cached bindings unused for idleTtl (on the injected clock); returns how many. */
  evictIdle(): number {
    this.#o.pools.evictIdle();
    this.#accrual.evictIdle(this.#idleTtlMs);
    this.#o.clientPools?.evictIdle();
    return this.#logical.evictIdle();
  }

  /** Bindings cached now (hostmesh_binding_cache_size). */
  get bindingCacheSize(): number {
    return this.#logical.size;
  }

  close(): void {
    this.#stopSweeper();
    this.#logical.close();
  }
}

/** Failure accrual's removals, reported with the client of the removed endpoint. */
function accrualRemoved(events: RouterEvents): (key: string) => void {
  return (key) => events.accrualRemoval(accrualClient(key));
}
