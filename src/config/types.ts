// The typed router configuration: what the YAML (Linkerd 1 shape) becomes after validation and
// defaults (config/load.ts). Every type here is the output of the zod schemas (schema.ts,
// kinds.ts), so a key is defined once: adding it to the schema adds it here. Where the loader
// normalizes (a router's label and identifier list, an h2 server's keys grouped, paths made
// absolute), the type says so with the schema's own types.
//
// The layers below (router/, tls/, h2/, server/, admin/) define the settings they read; the
// checks at the end make the compiler say when a schema stops fitting them.

import type { z } from 'zod';
import type { AdminSpec } from '../admin/admin-server.js';
import type { H2ServerLimits as H2ServerSpec } from '../h2/h2-limits.js';
import type { IdentifierConfig as IdentifierSpec } from '../router/stages/identify/identifiers.js';
import type { ClientSpec, FailureAccrualSpec, ServiceSpec } from '../router/settings/spec.js';
import type { NamerdDtabConfig } from '../server/namerd-dtab.js';
import type { ClientTlsSpec, ServerTlsSpec } from '../tls/tls-files.js';
import type { identifierSchema, loadBalancerSchema, transformerSchema } from './kinds.js';
import type { AccessLogConfig, TelemetryConfig } from './linkerd1-observability.js';
import type { rewriteNamer } from './namer-kinds.js';
import type {
  H2_SERVER_KEYS,
  RawConfig,
  clientShape,
  clientTls,
  failureAccrual,
  fsNamer,
  k8sNamer,
  retryBackoff,
  retryBudget,
  server,
  serverTls,
  serviceShape,
} from './schema.js';

/** The output of an object schema built from `shape`. */
type ShapeOutput<S extends z.core.$ZodLooseShape> = z.output<z.ZodObject<S>>;
type RawRouter = RawConfig['routers'][number];

export type AdminConfig = NonNullable<RawConfig['admin']>;

/** One of the transformer kinds (kinds.ts), its options checked by the schema. */
export type TransformerConfig = z.output<typeof transformerSchema>;
/** One of the identifier kinds (kinds.ts), its options checked by the schema. */
export type IdentifierConfig = z.output<typeof identifierSchema>;

/** Namers: the prefix is defaulted (/io.l5d.k8s, /io.l5d.fs) and rootDir made absolute by the loader. */
export type K8sNamerConfig = Omit<z.output<typeof k8sNamer>, 'prefix'> & { prefix: string };
export type FsNamerConfig = Omit<z.output<typeof fsNamer>, 'prefix'> & { prefix: string };
export type RewriteNamerConfig = z.output<typeof rewriteNamer>;
export type NamerConfig = K8sNamerConfig | FsNamerConfig | RewriteNamerConfig;

/** A server's TLS (paths absolute); Linkerd 1's `enabled` is read by the schema only. */
export type ServerTlsConfig = Omit<z.output<typeof serverTls>, 'enabled'>;
type H2ServerKey = (typeof H2_SERVER_KEYS)[number];
/** An h2 server's HTTP/2 keys, grouped under `h2` by the loader (the schema allows them on h2 routers only). */
export type H2ServerLimits = Pick<z.output<typeof server>, H2ServerKey>;
export type ServerConfig = Omit<z.output<typeof server>, H2ServerKey | 'tls'> & { tls?: ServerTlsConfig; h2?: H2ServerLimits };

export type ClientTlsConfig = Omit<z.output<typeof clientTls>, 'enabled'>;
export type LoadBalancerConfig = z.output<typeof loadBalancerSchema>;
export type RetryBudgetConfig = z.output<typeof retryBudget>;
export type RetryBackoffConfig = z.output<typeof retryBackoff>;
export type FailureAccrualConfig = z.output<typeof failureAccrual>;

/** The client keys that apply per bound id (global or in an io.l5d.static prefix config). */
type ClientKeys = Omit<ShapeOutput<typeof clientShape>, 'loadBalancer' | 'tls'> & { tls?: ClientTlsConfig };
export type HostConnectionPoolConfig = NonNullable<ClientKeys['hostConnectionPool']>;
/** A router's client: io.l5d.global inline, io.l5d.static as `configs` in order (its `kind` dropped). */
export type ClientConfig = ClientKeys & { loadBalancer: LoadBalancerConfig; configs?: ClientPrefixConfig[] };
export type ClientPrefixConfig = ClientKeys & { prefix: string };

type ServiceKeys = ShapeOutput<typeof serviceShape>;
/** A router's service block: io.l5d.global inline, io.l5d.static as `configs` in order (its `kind` dropped). */
export type ServiceConfig = ServiceKeys & { configs?: ServicePrefixConfig[] };
export type ServicePrefixConfig = ServiceKeys & { prefix: string };

export type BindingCacheConfig = NonNullable<RawRouter['bindingCache']>;

export type RouterConfig = Omit<
  RawRouter,
  'label' | 'dtab' | 'identifier' | 'interpreter' | 'servers' | 'client' | 'service' | 'maxHops' | 'streamAfterContentLengthKB'
> & {
  /** The router's label (default http, http-1, ...). */
  label: string;
  /** The dtab text in force (from `dtab` or the contents of `dtabFile`). */
  dtab: string;
  /** Tried in order; default [{kind: io.l5d.header.token, header: Host (:authority on h2)}]. */
  identifier: IdentifierConfig[];
  /** Linkerd 1's interpreter.transformers. */
  transformers: TransformerConfig[];
  servers: ServerConfig[];
  client: ClientConfig;
  service?: ServiceConfig;
  /** Via hops before a loop error (default 64). */
  maxHops: number;
  /** Linkerd 1's httpAccessLog (absolute path) and its roll keys. */
  accessLog?: AccessLogConfig;
  /** Linkerd 1's namerd interpreters: the dtab is namerd's, read from its Kubernetes storage. */
  namerd?: NamerdDtabConfig;
};

/** Workload identity; the trust domain is defaulted (cluster.local) by the loader. */
export type IdentityConfig = Omit<NonNullable<RawConfig['identity']>, 'trustDomain'> & { trustDomain: string };
export type IdentityIssuerConfig = NonNullable<IdentityConfig['issuer']>;
export type InetConfig = NonNullable<RawConfig['inet']>;
export type AuthzConfig = NonNullable<RawConfig['authz']>;

export type HostmeshConfig = Omit<RawConfig, 'admin' | 'namers' | 'routers' | 'identity'> & {
  admin: AdminConfig;
  namers: NamerConfig[];
  routers: RouterConfig[];
  identity?: IdentityConfig;
  /** Linkerd 1's telemetry list: io.l5d.prometheus serves Linkerd 1's metric names. */
  telemetry?: TelemetryConfig;
  /** The directory of the config file, for resolving relative paths. */
  baseDir: string;
};

/** Compiles only while each config type fits the settings type of the layer that reads it. */
type Fits<T extends U, U> = T;
export type ConfigFitsLayers = [
  Fits<ClientConfig, ClientSpec>,
  Fits<ServiceConfig, ServiceSpec>,
  Fits<FailureAccrualConfig, FailureAccrualSpec>,
  Fits<ServerTlsConfig, ServerTlsSpec>,
  Fits<ClientTlsConfig, ClientTlsSpec>,
  Fits<H2ServerLimits, H2ServerSpec>,
  Fits<AdminConfig, AdminSpec>,
  Fits<IdentifierConfig, IdentifierSpec>,
];
