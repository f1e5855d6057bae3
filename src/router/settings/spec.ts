// The settings a router reads, as the router defines them: the `service` settings of a logical
// name and the `client` settings of a bound id, global and per prefix (Linkerd 1's io.l5d.global
// and io.l5d.static). config/ validates the YAML and maps onto these types (config/types.ts checks
// at compile time that its schema's output fits them); nothing here knows about YAML or zod.

import type { ClientTlsSpec } from '../../tls/tls-files.js';

/** Linkerd 1's retry budget (retries.ts; defaults ttlSecs 10, minRetriesPerSec 10, percentCanRetry 0.2). */
export interface RetryBudgetSpec {
  readonly ttlSecs?: number | undefined;
  readonly minRetriesPerSec?: number | undefined;
  readonly percentCanRetry?: number | undefined;
}

/** Linkerd 1's retry backoff: constant (ms, default 0) or jittered (minMs, maxMs). */
export type RetryBackoffSpec =
  | { readonly kind: 'constant'; readonly ms?: number | undefined }
  | { readonly kind: 'jittered'; readonly minMs: number; readonly maxMs: number };

/** Linkerd 1's client.failureAccrual (failure-accrual.ts); `window` in seconds. */
export type FailureAccrualSpec =
  | { readonly kind: 'io.l5d.consecutiveFailures'; readonly failures?: number | undefined; readonly backoff?: RetryBackoffSpec | undefined }
  | { readonly kind: 'io.l5d.successRate'; readonly successRate: number; readonly requests: number; readonly backoff?: RetryBackoffSpec | undefined }
  | { readonly kind: 'io.l5d.successRateWindowed'; readonly successRate: number; readonly window: number; readonly backoff?: RetryBackoffSpec | undefined }
  | { readonly kind: 'none' };

/** Linkerd 1's client.hostConnectionPool (per endpoint); unset keys take endpoint-pool.ts's defaults. */
export interface HostConnectionPoolSpec {
  readonly minSize?: number | undefined;
  readonly maxSize?: number | undefined;
  readonly maxWaiters?: number | undefined;
  readonly idleTimeMs?: number | undefined;
}

export type BalancerKind = 'p2c' | 'ewma' | 'roundRobin';

/** What one bound id's client gets (defaults where they are used: endpoint-pool.ts clientLimits, per-name.ts). */
export interface ClientSettings {
  readonly tls?: ClientTlsSpec | undefined;
  readonly hostConnectionPool?: HostConnectionPoolSpec | undefined;
  readonly maxWaitMs?: number | undefined;
  readonly maxEndpointPools?: number | undefined;
  readonly maxInFlightPerSource?: number | undefined;
  readonly maxInFlightPerService?: number | undefined;
  readonly connectTimeoutMs?: number | undefined;
  readonly headersTimeoutMs?: number | undefined;
  readonly bodyIdleTimeoutMs?: number | undefined;
  readonly requestBodyIdleTimeoutMs?: number | undefined;
  readonly requeueBudget?: RetryBudgetSpec | undefined;
  readonly requestAttemptTimeoutMs?: number | undefined;
  readonly failureAccrual?: FailureAccrualSpec | undefined;
  /** The HTTP/1.1 client that carries requests to endpoints: hostmesh's lean one on raw sockets (default) or undici's Pool. */
  readonly engine?: 'lean' | 'undici' | undefined;
}

/** A router's client: its load balancer, its own settings, and settings per bound-id prefix, in order. */
export interface ClientSpec extends ClientSettings {
  readonly loadBalancer: { readonly kind: BalancerKind };
  readonly configs?: readonly ClientPrefixSpec[] | undefined;
}

/** One io.l5d.static client config: settings for bound ids under `prefix` (`*` and `{var}` elements). */
export interface ClientPrefixSpec extends ClientSettings {
  readonly prefix: string;
}

/** What one logical name's service gets: classification, retries and the total timeout. */
export interface ServiceSettings {
  /** io.l5d.http.nonRetryable5XX (default), retryableRead5XX, ..., or an io.l5d.h2.* kind on h2 routers. */
  readonly responseClassifier?:
    | { readonly kind: string; readonly retryableStatusCodes?: readonly number[] | undefined; readonly successStatusCodes?: readonly number[] | undefined }
    | undefined;
  readonly retries?:
    | {
        readonly budget?: RetryBudgetSpec | undefined;
        readonly backoff?: RetryBackoffSpec | undefined;
        /** hostmesh addition (default 10). */
        readonly maxRetriesPerRequest?: number | undefined;
      }
    | undefined;
  /** A body larger than this is never resent (default 65536). */
  readonly retryBufferSize?: { readonly requestBytes?: number | undefined } | undefined;
  /** The whole request, retries included (deadline.ts; default unbounded). */
  readonly totalTimeoutMs?: number | undefined;
}

/** A router's service block: its own settings, and settings per logical-name prefix, in order. */
export interface ServiceSpec extends ServiceSettings {
  readonly configs?: readonly ServicePrefixSpec[] | undefined;
}

export interface ServicePrefixSpec extends ServiceSettings {
  readonly prefix: string;
}
