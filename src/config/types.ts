// The typed router configuration: what the YAML (Linkerd 1 shape) becomes after validation and
// defaults. The loader (config/load.ts) produces it; servers, routers and namers consume it.

import type { NamerdDtabConfig } from './interpreter.js';
import type { AccessLogConfig, TelemetryConfig } from './linkerd1-observability.js';

export interface AdminConfig {
  ip: string; // default 0.0.0.0 (kubelet probes need it)
  port: number; // default 9990
  allowRemoteShutdown: boolean; // default false
  /** Host names the admin answers besides loopback names and its own addresses (DNS rebinding guard). */
  allowedHosts?: string[];
  /** Sources besides this host (loopback, its own address) that may read config, topology and the dashboard. */
  allowedSourceCidrs?: string[];
  /** Request line + headers must arrive within this (default 20 s, as the routers' servers). */
  headersTimeoutMs?: number;
  /** A connection with no traffic this long is closed (default 5 min, as the routers' servers). */
  idleTimeoutMs?: number;
  /** Connections open at once, counted apart for this host's own and for others (default 1,000 each). */
  maxConnections?: number;
  /** Connections open at once from one source address (default 100). */
  maxConnectionsPerSource?: number;
}

export interface K8sNamerConfig {
  kind: 'io.l5d.k8s';
  prefix: string; // default /io.l5d.k8s (mounted at /#/io.l5d.k8s)
  host?: string; // a kubectl proxy (plain HTTP) when set
  port?: number;
  labelSelector?: string;
  api?: 'endpointslices' | 'endpoints';
  /** Namespaces watched at once, 2 API watches each (default 32); past it a name fails clearly. */
  maxNamespaces?: number;
  /** A name no binding uses is dropped after this, its namespace's watches with its last name (default 60). */
  idleTtlSecs?: number;
  /** Idle names kept at most, the oldest dropped first (default 1000). */
  maxIdleNames?: number;
  /** Linkerd 1: transformers applied to every address this namer binds. */
  transformers?: TransformerConfig[];
  /** Endpoints published per name at most (default 5000); the rest are left out, counted. */
  maxEndpointsPerService?: number;
  /** Delivers to loopback endpoint addresses (a cluster simulated on one machine); default false. */
  allowLoopbackEndpoints?: boolean;
}

export interface FsNamerConfig {
  kind: 'io.l5d.fs';
  prefix: string; // default /io.l5d.fs
  rootDir: string; // absolute (resolved against the config file's directory)
  idleTtlSecs?: number; // a name no binding uses is dropped after this (default 60)
  maxIdleNames?: number; // idle names kept at most, the oldest dropped first (default 1000)
  transformers?: TransformerConfig[];
}

/** Linkerd 1's io.l5d.rewrite namer (namer/rewrite-namer.ts). */
export interface RewriteNamerConfig {
  kind: 'io.l5d.rewrite';
  prefix: string;
  pattern: string;
  name: string;
}

export type NamerConfig = K8sNamerConfig | FsNamerConfig | RewriteNamerConfig;

export interface ServerTlsConfig {
  /** Both absent: the node certificate from identity.issuer. */
  certPath?: string;
  keyPath?: string;
  caCertPath?: string;
  /** Linkerd 1: CA certificates sent after the certificate (its chain to the root). */
  intermediateCertsPath?: string;
  requireClientAuth: boolean;
  /** A TLS handshake must finish within this, else the socket is destroyed (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Unfinished handshakes at once; over it the oldest of the source holding most is closed (default 512). */
  maxPendingHandshakes?: number;
  /** Linkerd 1's TLS versions and suites (tls/policy.ts; default TLS 1.2-1.3, forward-secret AEAD). */
  protocols?: string[];
  ciphers?: string[];
}

export interface ServerConfig {
  port: number;
  ip: string; // Linkerd 1 defaults servers to loopback
  /**
   * Who connects: `outbound` is this node's pods (plaintext, a source guard), `inbound` is peer
   * routers (mTLS). The `direction` key, else the router's label (`outgoing`/`incoming`, as in
   * Linkerd 1 DaemonSet configs), else inbound when the server has TLS.
   */
  direction?: 'outbound' | 'inbound';
  tls?: ServerTlsConfig;
  /** hostmesh additions: a request's headers must arrive within this (slowloris bound). */
  headersTimeoutMs?: number;
  /** A connection with no traffic for this long is closed (keep-alive and stalled bodies). */
  idleTimeoutMs?: number;
  /** Bound on the request line plus headers, in bytes (larger is 431). */
  maxHeaderBytes?: number;
  /** An Upgrade or CONNECT tunnel with no traffic this long is closed (default 5 min). */
  tunnelIdleTimeoutMs?: number;
  /** Accepted connections open at once on this server; more are closed on arrival (default 10,000). */
  maxConnections?: number;
  /** Accepted connections open at once from one source address (default 1,000). */
  maxConnectionsPerSource?: number;
  /** Bound on a request's header fields (more is 431; default 500, router/headers.ts). */
  maxHeaders?: number;
  /** Requests queued on one connection (pipelined) before it is no longer read (default 32). */
  maxPipelinedRequests?: number;
  /** Linkerd 1's clearContext: l5d-ctx-* and l5d-dtab are removed from requests arriving here. */
  clearContext?: boolean;
  /** Plaintext servers: only pods on this node, the node and loopback may connect (default true). */
  localSourcesOnly?: boolean;
  /** Extra sources a plaintext server admits (CIDRs). */
  allowedSourceCidrs?: string[];
  /** How long a source no pod has yet waits for the pod watch (default 2000 ms). */
  sourceWaitMs?: number;
  /** protocol: h2 routers only: HTTP/2 settings and bounds (defaults and meaning in h2/h2-limits.ts). */
  h2?: H2ServerLimits;
}

/** An h2 server's HTTP/2 bounds as configured (Linkerd 1's h2 server keys, plus hostmesh's). */
export interface H2ServerLimits {
  maxConcurrentStreamsPerConnection?: number;
  maxFrameBytes?: number;
  maxHeaderListBytes?: number;
  initialStreamWindowBytes?: number;
  maxSessionMemoryMb?: number;
  maxResetsPerSession?: number;
}

/** Workload identity across the per-node hop (identity/*). */
export interface IdentityConfig {
  /** Identities are `<sa>.<ns>.serviceaccount.identity.hostmesh.<trustDomain>` (default cluster.local). */
  trustDomain: string;
  /** Watch the cluster's pods; default on when an io.l5d.k8s namer is configured. */
  podWatch?: boolean;
  /** How long a claim about a pod this router does not know yet waits for its pod watch (default 2000 ms). */
  claimWaitMs?: number;
  /** Claims waiting for the pod watch at once per router; past it refused at once (default 1024). */
  maxClaimWaits?: number;
  /** Node certificates from `hostmesh identity` (tls/node-certificate.ts); absent: certificate files only. */
  issuer?: IdentityIssuerConfig;
}

export interface IdentityIssuerConfig {
  url: string;
  /** The projected ServiceAccount token (audience hostmesh-identity), re-read for every request. */
  tokenFile: string;
  /** Trust anchors (one or two during a rotation): verify the issuer; reloaded without restart. */
  trustBundle: string;
  serverName?: string;
  /** Renew at this fraction of the certificate's life (default 2/3). */
  renewFraction?: number;
  /** Backoff after a failed renewal: from retryMinMs (default 1 s) doubling to retryMaxMs (default 60 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  requestTimeoutMs?: number;
}

/** Bounds of the /$/inet address map (namer/builtins.ts). */
export interface InetConfig {
  idleTtlSecs?: number; // an address no dtab named this long is dropped (default 60)
  maxNames?: number; // addresses kept at most, the least recently named dropped first (default 1000)
}

export interface ClientTlsConfig {
  commonName?: string;
  trustCerts?: string[];
  trustCertsBundle?: string;
  disableValidation?: boolean;
  clientAuth?: { certPath: string; keyPath: string; intermediateCertsPath?: string };
  /** As ServerTlsConfig's: what this router offers when it connects to peers. */
  protocols?: string[];
  ciphers?: string[];
}

export interface LoadBalancerConfig {
  kind: 'p2c' | 'ewma' | 'roundRobin';
}

/** Linkerd 1's client.hostConnectionPool (per endpoint); unset keys take hostmesh's defaults. */
export interface HostConnectionPoolConfig {
  minSize?: number; // connections per endpoint kept open while idle past idleTimeMs (default 0)
  maxSize?: number; // connections per endpoint = requests in flight on it (default 64)
  maxWaiters?: number; // requests waiting for a slot before shedding with 503 (default 1024)
  idleTimeMs?: number; // an idle connection is closed after this (default 30000)
}

export interface ClientConfig {
  tls?: ClientTlsConfig;
  loadBalancer: LoadBalancerConfig;
  hostConnectionPool?: HostConnectionPoolConfig;
  /** hostmesh additions (defaults in router/endpoint-pool.ts clientLimits): fair shares and deadlines. */
  maxWaitMs?: number; // a waiter is shed after this (default 5000)
  maxEndpointPools?: number; // endpoint pools open at once; past it the LRU idle one closes (default 1000)
  maxInFlightPerSource?: number; // per source address and endpoint (default half of maxSize)
  maxInFlightPerService?: number; // per logical name and endpoint (default 3/4 of maxSize)
  connectTimeoutMs?: number; // Linkerd 1: TCP connect and TLS handshake to an endpoint (default 10000)
  headersTimeoutMs?: number; // upstream response headers after the request is sent (default 30000)
  bodyIdleTimeoutMs?: number; // upstream response body without progress (default 60000)
  requestBodyIdleTimeoutMs?: number; // request body without progress: 408 (default 60000)
  /** Linkerd 1's requeue budget: resends of requests no app received (defaults as retries). */
  requeueBudget?: RetryBudgetConfig;
  /** Linkerd 1: one attempt's wait for an answer (router/deadline.ts; default unbounded). */
  requestAttemptTimeoutMs?: number;
  /** Linkerd 1's failure accrual per endpoint (default io.l5d.consecutiveFailures, 5, jittered 5 s..300 s). */
  failureAccrual?: FailureAccrualConfig;
  /** Linkerd 1's `kind: io.l5d.static`: settings per bound-id prefix, every match applied in order (router/static-params.ts). */
  configs?: ClientPrefixConfig[];
}

/** One `client.configs` entry: client keys for bound ids under `prefix` (`*` and `{var}` elements allowed). */
export interface ClientPrefixConfig extends Omit<Partial<ClientConfig>, 'loadBalancer' | 'configs'> {
  prefix: string;
}

/** One `service.configs` entry: service keys for logical names under `prefix`. */
export interface ServicePrefixConfig extends Omit<ServiceConfig, 'configs'> {
  prefix: string;
}

/** Linkerd 1's client.failureAccrual (router/failure-accrual.ts); `window` in seconds. */
export type FailureAccrualConfig =
  | { kind: 'io.l5d.consecutiveFailures'; failures?: number; backoff?: RetryBackoffConfig }
  | { kind: 'io.l5d.successRate'; successRate: number; requests: number; backoff?: RetryBackoffConfig }
  | { kind: 'io.l5d.successRateWindowed'; successRate: number; window: number; backoff?: RetryBackoffConfig }
  | { kind: 'none' };

/** Linkerd 1's retry budget (router/retries.ts; defaults ttlSecs 10, minRetriesPerSec 10, percentCanRetry 0.2). */
export interface RetryBudgetConfig {
  ttlSecs?: number;
  minRetriesPerSec?: number;
  percentCanRetry?: number;
}

/** Linkerd 1's retry backoff: constant (ms, default 0) or jittered (minMs, maxMs). */
export type RetryBackoffConfig = { kind: 'constant'; ms?: number } | { kind: 'jittered'; minMs: number; maxMs: number };

/** Linkerd 1's router-level `service` block: how responses are classified and retried. */
export interface ServiceConfig {
  responseClassifier?: { kind: string }; // io.l5d.http.nonRetryable5XX (default), retryableRead5XX, retryableIdempotent5XX, allSuccessful
  retries?: {
    budget?: RetryBudgetConfig;
    backoff?: RetryBackoffConfig;
    maxRetriesPerRequest?: number; // hostmesh addition (default 10)
  };
  retryBufferSize?: { requestBytes?: number }; // a body larger than this is never resent (default 65536)
  totalTimeoutMs?: number; // the whole request, retries included (router/deadline.ts; default unbounded)
  /** Linkerd 1's `kind: io.l5d.static`: settings per logical-name prefix, every match applied in order. */
  configs?: ServicePrefixConfig[];
}

/** An identifier turns a request into a logical name (e.g. /svc/world). Options vary per kind. */
export interface IdentifierConfig {
  kind: string; // io.l5d.header.token (default), io.l5d.methodAndHost, io.l5d.path, io.l5d.header, io.l5d.static
  [option: string]: unknown;
}

export interface TransformerConfig {
  kind: string; // io.l5d.k8s.daemonset, io.l5d.k8s.localnode, io.l5d.port, io.l5d.replace, io.l5d.const
  [option: string]: unknown;
}

export interface RouterConfig {
  /** http (HTTP/1.1), or h2 (HTTP/2 and gRPC: h2c from apps, h2 over mTLS between routers; h2/*). */
  protocol: 'http' | 'h2';
  label: string;
  /** The dtab text in force (from `dtab` or the contents of `dtabFile`). */
  dtab: string;
  /** Absolute path when the dtab came from a file (watched and reloaded). */
  dtabFile?: string;
  /** Prefix of the names identifiers build (Linkerd 1's dstPrefix, default /svc). */
  dstPrefix?: string;
  identifier: IdentifierConfig[]; // tried in order; default [{kind: io.l5d.header.token, header: Host}]
  /** Linkerd 1's httpAccessLog (absolute path) and its roll keys. */
  accessLog?: AccessLogConfig;
  transformers: TransformerConfig[];
  servers: ServerConfig[];
  client: ClientConfig;
  maxHops: number; // Via hops before a loop error, default 64
  /** Most nodes of one delegation tree (default 10,000, namer/interpreter DEFAULT_BINDING_BUDGET). */
  bindingBudget?: number;
  /** Linkerd 1's bindingTimeoutMs: a request waits this long for a pending binding, then 503 TIMEOUT (default 10 s). */
  bindingTimeoutMs?: number;
  bindingCache?: BindingCacheConfig;
  /** Peers that announced a drain (defaults in router/draining-peers.ts: ttlMs 30000, max 10000). */
  drainingPeers?: { ttlMs?: number; max?: number };
  service?: ServiceConfig;
  /** Linkerd 1's namerd interpreters: the dtab is namerd's, read from its Kubernetes storage (config/interpreter.ts). */
  namerd?: NamerdDtabConfig;
}

/** Linkerd 1's router bindingCache; unset keys take the defaults of router/router.ts. */
export interface BindingCacheConfig {
  paths?: number; // bindings through the router's own dtab (default 1000)
  trees?: number; // same cache in hostmesh (the smaller of paths and trees applies)
  bounds?: number; // accepted, not a separate cache in hostmesh
  clients?: number; // accepted, not a separate cache in hostmesh
  idleTtlSecs?: number; // a binding unused this long is dropped (default 600)
  overrides?: number; // bindings through a request's dtab override (default 100)
}

export interface AuthzConfig {
  /** Absolute path (relative paths are resolved against the config file's directory). */
  policyFile: string;
  pollMs?: number; // safety-net poll of the policy file (default 2000)
  parserMemoryMb?: number; // heap of the reload parser worker (default 192)
}

export interface HostmeshConfig {
  admin: AdminConfig;
  namers: NamerConfig[];
  routers: RouterConfig[];
  nodeName?: string; // else NODE_NAME from the environment
  /** Workload identity; absent: defaults (trust domain cluster.local, pod watch with an io.l5d.k8s namer). */
  identity?: IdentityConfig;
  /** Bounds of the /$/inet address map; absent: the defaults. */
  inet?: InetConfig;
  shutdownGraceMs: number; // default 10000
  /** Served normally, answers to peers marked draining, before the drain starts (default 2000; 0: none). */
  drainAnnounceMs?: number;
  /** The authorization policy (docs/authz.md); absent: every call is allowed. */
  authz?: AuthzConfig;
  /** Linkerd 1's telemetry list: io.l5d.prometheus serves Linkerd 1's metric names. */
  telemetry?: TelemetryConfig;
  /** The directory of the config file, for resolving relative paths. */
  baseDir: string;
}
