// What the forward stage applies per name: a logical name's retry policy, classifier and retry
// budgets, a bound client's attempt timeout, requeue budgets and pools (io.l5d.static or global).

import type { Clock } from '../../core/clock.js';
import type { Path } from '../../dtab/path.js';
import {
  classifier as buildClassifier,
  type Classifier,
  type ClassifierKind,
  DEFAULT_CLASSIFIER,
  type H2Classifier,
  h2Classifier,
} from '../stages/forward/classifier.js';
import type { ClientPools } from '../stages/endpoint/client-pools.js';
import type { EndpointPools } from '../stages/endpoint/endpoint-pool.js';
import { type AccrualOptions, accrualConfig, FailureAccrual } from '../stages/concrete/failure-accrual.js';
import { type BudgetConfig, Budgets, DEFAULT_BACKOFF, DEFAULT_BUDGET, DEFAULT_RETRY_POLICY, MAX_BUDGETS, type RetryPolicy } from '../stages/forward/retries.js';
import type { ClientSettings, RouterParams, ServiceSettings } from './static-params.js';

/** A service's retry policy (Linkerd 1 service.retries and retryBufferSize), defaults filled in. */
export function retryPolicyOf(s: ServiceSettings | undefined): RetryPolicy {
  const backoff = s?.retries?.backoff;
  return {
    budget: { ...DEFAULT_BUDGET, ...s?.retries?.budget },
    backoff: backoff === undefined ? DEFAULT_BACKOFF : backoff.kind === 'constant' ? { kind: 'constant', ms: backoff.ms ?? 0 } : backoff,
    maxRetriesPerRequest: s?.retries?.maxRetriesPerRequest ?? DEFAULT_RETRY_POLICY.maxRetriesPerRequest,
    requestBufferBytes: s?.retryBufferSize?.requestBytes ?? DEFAULT_RETRY_POLICY.requestBufferBytes,
  };
}

/** A service's response classifier (Linkerd 1 service.responseClassifier; the schema checked the kind). */
export function classifierOf(s: ServiceSettings | undefined): Classifier {
  return buildClassifier((s?.responseClassifier?.kind as ClassifierKind | undefined) ?? DEFAULT_CLASSIFIER);
}

/** A service's classifier on an h2 router (an io.l5d.h2.* kind; gRPC ones read grpc-status). */
export function h2ClassifierOf(s: ServiceSettings | undefined): H2Classifier {
  const rc = s?.responseClassifier;
  return h2Classifier(rc?.kind, rc?.retryableStatusCodes, rc?.successStatusCodes);
}

/** A client's requeue budget (Linkerd 1 client.requeueBudget), defaults filled in. */
export function requeueBudgetOf(c: ClientSettings | undefined): BudgetConfig {
  return { ...DEFAULT_BUDGET, ...c?.requeueBudget };
}

export interface ServicePolicy {
  readonly retries: RetryPolicy;
  readonly classify: Classifier;
  /** The same service's classifier on an h2 router (per prefix too: io.l5d.static service configs). */
  readonly classifyH2: H2Classifier;
  /** Retry budgets of this policy, one per service name (at most MAX_BUDGETS). */
  readonly retryBudgets: Budgets;
}

export interface ClientPolicy {
  readonly requestAttemptTimeoutMs: number | undefined;
  /** Requeue budgets of this policy, one per client id (at most MAX_BUDGETS). */
  readonly requeueBudgets: Budgets;
  /** The endpoint pools this client connects through (per-prefix TLS and pool limits). */
  readonly pools: EndpointPools;
  /** Failure accrual of this client's endpoints (a per-prefix failureAccrual has its own state). */
  readonly accrual: FailureAccrual;
}

/**
 * The dead-endpoint gauge over several accrual states (the router's and per-prefix ones): each
 * reporter holds its state's count, the total is reported.
 */
export class DeadCounts {
  readonly #counts: number[] = [];
  readonly #report: ((total: number) => void) | undefined;

  constructor(report?: (total: number) => void) {
    this.#report = report;
  }

  reporter(): (dead: number) => void {
    const slot = this.#counts.push(0) - 1;
    return (dead) => {
      this.#counts[slot] = dead;
      this.#report?.(this.#counts.reduce((a, b) => a + b, 0));
    };
  }
}

export interface PerNameOptions {
  /** Budgets and per-prefix failure accrual run on it. */
  readonly clock: Clock;
  /** The router's own service policy (its io.l5d.global service, or the options tests pass). */
  readonly service?: Partial<Omit<ServicePolicy, 'retryBudgets'>>;
  /** The router's own client policy. */
  readonly requeueBudget?: BudgetConfig;
  readonly requestAttemptTimeoutMs?: number | undefined;
  /** The router's own failure accrual (its io.l5d.global client.failureAccrual). */
  readonly accrual: FailureAccrual;
  /** For per-prefix accrual states: the clock, metrics, and the dead gauge's reporters. */
  readonly accrualOptions?: Omit<AccrualOptions, 'onDeadCount'>;
  readonly deadCounts?: DeadCounts;
}

/**
 * Policies per name. Names with the same effective settings share one policy (and so one set of
 * budgets, keyed by name inside): the number of policies is bounded by the config's prefix
 * configs, not by request data. Names without a prefix config get the router's own policy.
 */
export class PerName {
  readonly #params: RouterParams;
  readonly #pools: ClientPools;
  readonly #now: () => number;
  readonly #globalService: ServicePolicy;
  readonly #globalClient: Omit<ClientPolicy, 'pools'>;
  readonly #services = new Map<string, ServicePolicy>();
  readonly #clients = new Map<string, Omit<ClientPolicy, 'pools'>>();
  readonly #accruals = new Map<string, FailureAccrual>();
  readonly #options: PerNameOptions;
  /** The router's own client policy, one object (asked for several times per request). */
  readonly #globalClientPolicy: ClientPolicy;
  readonly #perPrefixService: boolean;
  readonly #perPrefixClient: boolean;
  // The policy of a merged settings object, while the settings cache holds it: the hot path
  // skips building the key (JSON) when a name's settings are cached.
  readonly #servicePolicyOf = new WeakMap<object, ServicePolicy>();
  readonly #clientPolicyOf = new WeakMap<object, Omit<ClientPolicy, 'pools'>>();

  constructor(params: RouterParams, pools: ClientPools, options: PerNameOptions) {
    this.#params = params;
    this.#pools = pools;
    this.#now = () => options.clock.now();
    this.#options = options;
    const retries = options.service?.retries ?? DEFAULT_RETRY_POLICY;
    this.#globalService = {
      retries,
      classify: options.service?.classify ?? classifierOf(undefined),
      classifyH2: options.service?.classifyH2 ?? h2ClassifierOf(undefined),
      retryBudgets: new Budgets(retries.budget, MAX_BUDGETS, this.#now),
    };
    this.#globalClient = {
      requestAttemptTimeoutMs: options.requestAttemptTimeoutMs,
      requeueBudgets: new Budgets(options.requeueBudget ?? DEFAULT_BUDGET, MAX_BUDGETS, this.#now, 'requeue_budgets'),
      accrual: options.accrual,
    };
    this.#globalClientPolicy = { ...this.#globalClient, pools: pools.router };
    const perPrefix = params.perPrefix;
    this.#perPrefixService = perPrefix.service;
    this.#perPrefixClient = perPrefix.client;
  }

  service(name: Path | string): ServicePolicy {
    if (!this.#perPrefixService) return this.#globalService;
    const s = this.#params.forService(name);
    const known = this.#servicePolicyOf.get(s);
    if (known !== undefined) return known;
    const key = JSON.stringify([s.retries ?? null, s.retryBufferSize ?? null, s.responseClassifier ?? null]);
    let policy = this.#services.get(key);
    if (policy === undefined) {
      const retries = retryPolicyOf(s);
      policy = { retries, classify: classifierOf(s), classifyH2: h2ClassifierOf(s), retryBudgets: new Budgets(retries.budget, MAX_BUDGETS, this.#now) };
      this.#services.set(key, policy);
    }
    this.#servicePolicyOf.set(s, policy);
    return policy;
  }

  client(id: Path | string): ClientPolicy {
    if (!this.#perPrefixClient) return this.#globalClientPolicy;
    const c = this.#params.forClient(id);
    // The pools are asked each time: a per-prefix pool may have been retired since (LRU, TLS reload).
    const known = this.#clientPolicyOf.get(c);
    if (known !== undefined) return { ...known, pools: this.#pools.for(c) };
    const accrualKey = c.failureAccrual === undefined ? '' : JSON.stringify(c.failureAccrual);
    const key = JSON.stringify([c.requeueBudget ?? null, c.requestAttemptTimeoutMs ?? null, accrualKey]);
    let policy = this.#clients.get(key);
    if (policy === undefined) {
      policy = {
        requestAttemptTimeoutMs: c.requestAttemptTimeoutMs,
        requeueBudgets: new Budgets(requeueBudgetOf(c), MAX_BUDGETS, this.#now, 'requeue_budgets'),
        accrual: this.#accrualFor(accrualKey, c),
      };
      this.#clients.set(key, policy);
    }
    this.#clientPolicyOf.set(c, policy);
    return { ...policy, pools: this.#pools.for(c) };
  }

  /** One accrual state per distinct per-prefix failureAccrual config (bounded by the config). */
  #accrualFor(key: string, c: ClientSettings): FailureAccrual {
    if (c.failureAccrual === undefined) return this.#options.accrual;
    let accrual = this.#accruals.get(key);
    if (accrual === undefined) {
      const reporter = this.#options.deadCounts?.reporter();
      accrual = new FailureAccrual(accrualConfig(c.failureAccrual), {
        clock: this.#options.clock,
        ...this.#options.accrualOptions,
        ...(reporter !== undefined ? { onDeadCount: reporter } : {}),
      });
      this.#accruals.set(key, accrual);
    }
    return accrual;
  }

  /** service.totalTimeoutMs for `name` (its prefix configs' over the router's own), or the router's own without a name. */
  totalTimeoutMs(name?: Path | string): number | undefined {
    if (name === undefined || !this.#perPrefixService) return this.#params.service.totalTimeoutMs;
    return this.#params.forService(name).totalTimeoutMs;
  }
}
