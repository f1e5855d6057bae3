// The config schema (Linkerd 1 shape) as zod schemas, plus the keys Linkerd 1 defines that
// hostmesh accepts but does not enforce yet (each is stripped before validation with a warning).

import { z } from 'zod';
import { dtabPath, identifierSchema, loadBalancerSchema, notPerPrefix, scopeKinds, transformerSchema } from './kinds.js';
import { parseCidr } from '../identity/source-guard.js';
import { DNS_SUBDOMAIN_NAME } from '../k8s/names.js';
import { CLASSIFIER_KINDS } from '../router/stages/forward/classifier.js';
import { H2_CLASSIFIER_KINDS } from '../router/stages/forward/classifier.js';
import { DEFAULT_POOL_MAX_SIZE } from '../router/stages/endpoint/endpoint-pool.js';
import { tlsPolicyProblems } from '../tls/policy.js';
import { interpreterSchema } from './interpreter.js';
import { namerKindError, protocolError, rewriteNamer } from './namer-kinds.js';

const port = z.number().int().min(0).max(65535);
const ip = z.string().min(1);

/** Linkerd 1 keys accepted and ignored for now, per object kind (key path suffixes). */
export const UNENFORCED: Readonly<Record<string, readonly string[]>> = {
  root: ['usage', 'announcers', 'tracers', 'jvm'],
  admin: ['httpIdentifierPort', 'security', 'workerThreads', 'tls', 'socketOptions'],
  // `transformers` is enforced (namer/transforming-namer.ts).
  namer: ['experimental', 'enabled'],
  router: [
    'svc',
    'tracePropagator',
    // maxHeadersKB and maxInitialLineKB are enforced as the servers' maxHeaderBytes (linkerd1-keys.ts).
    'maxRequestKB',
    'maxResponseKB',
    'maxChunkKB',
    'streamingEnabled',
    'compressionLevel',
    'addForwardedHeader',
    'timeoutMs',
    'originator',
    'announcers',
    'socketOptions',
    'responseClassifier',
    'retries',
    'totalTimeoutMs',
    'requestAuthorizers',
    'loggers',
    'experimental',
    'maxErrResponseKB',
  ],
  // Every interpreter key is enforced, warned about with what it loses, or refused (config/interpreter.ts).
  interpreter: [],
  // serverSession.idleTimeMs and maxCallDepth are enforced (linkerd1-keys.ts); serverSession is then stripped here.
  server: [
    'maxConcurrentRequests',
    'announce',
    'timeoutMs',
    'alpnProtocols',
    'socketOptions',
    'addForwardedHeader',
    'label',
    'timestampHeader',
    'serverSession',
  ],
  serverTls: [],
  client: ['retries', 'clientSession', 'socketOptions', 'forwardClientCert', 'failFast', 'requestAuthorizers'],
  // protocol: h2 routers only (Linkerd 1's H2Config); on an http router these stay unknown keys.
  h2Server: ['windowUpdateRatio', 'headerTableBytes'],
  h2Client: ['initialStreamWindowBytes', 'headerTableBytes', 'maxFrameBytes', 'maxHeaderListBytes', 'windowUpdateRatio'],
  h2Service: ['classificationTimeoutMs'],
  h2RetryBufferSize: ['responseBytes'],
  clientTls: [],
  // Linkerd 1's router-level service block: every key is enforced (kind and configs in kinds.ts scopeKinds).
  service: [],
};

/** Linkerd 1's `protocols` and `ciphers` (JSSE/IANA or OpenSSL names), checked together. */
const tlsNames = {
  protocols: z.array(z.string().min(1)).min(1).optional(),
  ciphers: z.array(z.string().min(1)).min(1).optional(),
};

function checkTlsNames(tls: { protocols?: string[] | undefined; ciphers?: string[] | undefined }, ctx: z.RefinementCtx): void {
  for (const p of tlsPolicyProblems(tls.protocols, tls.ciphers)) ctx.addIssue({ code: 'custom', message: p.message, path: [...p.path] });
}

export const serverTls = z
  .strictObject({
    // Both absent: the node certificate from identity.issuer (docs/identity.md).
    certPath: z.string().min(1).optional(),
    keyPath: z.string().min(1).optional(),
    caCertPath: z.string().min(1).optional(),
    intermediateCertsPath: z.string().min(1).optional(),
    requireClientAuth: z.boolean().default(false),
    handshakeTimeoutMs: z.number().int().min(100).max(600_000).optional(),
    maxPendingHandshakes: z.number().int().min(1).max(1_000_000).optional(),
    enabled: z.boolean().optional(),
    ...tlsNames,
  })
  .superRefine(checkTlsNames);

export const server = z.strictObject({
  port,
  ip: ip.default('127.0.0.1'), // Linkerd 1 serves on loopback unless told otherwise
  tls: serverTls.optional(),
  headersTimeoutMs: z.number().int().min(100).optional(),
  idleTimeoutMs: z.number().int().min(100).optional(),
  maxHeaderBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .optional(),
  // Socket limits (hostmesh additions): tunnels' idle deadline, caps on accepted connections.
  tunnelIdleTimeoutMs: z.number().int().min(100).optional(),
  maxConnections: z.number().int().min(1).max(1_000_000).optional(),
  maxConnectionsPerSource: z.number().int().min(1).max(1_000_000).optional(),
  maxHeaders: z.number().int().min(16).max(10_000).optional(),
  // hostmesh: requests queued on one connection before it is no longer read (server/pipeline.ts).
  maxPipelinedRequests: z.number().int().min(1).max(100_000).optional(),
  // hostmesh: the HTTP/1.1 server engine (server/h1-server.ts): Node's http.Server or the lean one.
  engine: z.enum(['node', 'lean'], { error: 'expected node or lean' }).optional(),
  // Linkerd 1: strip l5d-ctx-* and l5d-dtab from requests arriving on this server.
  clearContext: z.boolean().optional(),
  // hostmesh additions (plaintext servers): serve only pods on this node, the node and loopback,
  // plus these CIDRs; a source no pod has yet waits sourceWaitMs for the pod watch.
  // hostmesh: who connects to this server (resolved in load.ts when absent).
  direction: z.enum(['outbound', 'inbound']).optional(),
  localSourcesOnly: z.boolean().optional(),
  allowedSourceCidrs: z.array(z.string().superRefine(cidrCheck)).optional(),
  sourceWaitMs: z.number().int().min(0).max(60_000).optional(),
  // Linkerd 1's h2 server keys (protocol: h2 routers only, checked in `router`), plus hostmesh's
  // bounds on a session's memory and on stream resets ("rapid reset"); defaults in h2/h2-limits.ts.
  maxConcurrentStreamsPerConnection: z.number().int().min(1).max(100_000).optional(),
  maxFrameBytes: z
    .number()
    .int()
    .min(16_384)
    .max(16 * 1024 * 1024 - 1)
    .optional(),
  maxHeaderListBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .optional(),
  initialStreamWindowBytes: z
    .number()
    .int()
    .min(1024)
    .max(2 ** 31 - 1)
    .optional(),
  maxSessionMemoryMb: z.number().int().min(1).max(1024).optional(),
  maxResetsPerSession: z.number().int().min(1).max(1_000_000).optional(),
});

/** Server keys that only an h2 router's servers take. */
export const H2_SERVER_KEYS = [
  'maxConcurrentStreamsPerConnection',
  'maxFrameBytes',
  'maxHeaderListBytes',
  'initialStreamWindowBytes',
  'maxSessionMemoryMb',
  'maxResetsPerSession',
] as const;

export const clientTls = z
  .strictObject({
    commonName: z.string().min(1).optional(),
    trustCerts: z.array(z.string().min(1)).optional(),
    trustCertsBundle: z.string().min(1).optional(),
    disableValidation: z.boolean().optional(),
    clientAuth: z.strictObject({ certPath: z.string().min(1), keyPath: z.string().min(1), intermediateCertsPath: z.string().min(1).optional() }).optional(),
    enabled: z.boolean().optional(),
    ...tlsNames,
  })
  .superRefine((tls, ctx) => {
    checkTlsNames(tls, ctx);
    // As Linkerd 1 (TlsClientConfig): presenting a certificate to a server that is not verified.
    if (tls.disableValidation === true && tls.clientAuth !== undefined)
      ctx.addIssue({ code: 'custom', path: ['disableValidation'], message: 'disableValidation: true is incompatible with clientAuth (as in Linkerd 1)' });
  });

/** Linkerd 1's retry budget (router/stages/forward/retries.ts). */
export const retryBudget = z.strictObject({
  ttlSecs: z.number().int().min(1).max(60).optional(),
  minRetriesPerSec: z.number().min(0).max(100_000).optional(),
  percentCanRetry: z.number().min(0).max(1000).optional(),
});

export const retryBackoff = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('constant'), ms: z.number().int().min(0).max(600_000).optional() }),
  z
    .strictObject({ kind: z.literal('jittered'), minMs: z.number().int().min(0).max(600_000), maxMs: z.number().int().min(0).max(600_000) })
    .refine((b) => b.maxMs >= b.minMs, { message: 'maxMs must be at least minMs', path: ['maxMs'] }),
]);

/** Linkerd 1's client.failureAccrual kinds; backoff as retries' (how long an endpoint stays dead). */
const successRate = z.number().gt(0).max(1);
export const failureAccrual = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('io.l5d.consecutiveFailures'), failures: z.number().int().min(1).max(10_000).optional(), backoff: retryBackoff.optional() }),
  z.strictObject({ kind: z.literal('io.l5d.successRate'), successRate, requests: z.number().int().min(1).max(100_000), backoff: retryBackoff.optional() }),
  z.strictObject({ kind: z.literal('io.l5d.successRateWindowed'), successRate, window: z.number().int().min(1).max(3600), backoff: retryBackoff.optional() }),
  z.strictObject({ kind: z.literal('none') }),
]);

/** Linkerd 1's HTTP response classifiers: the router's list (router/stages/forward/classifier.ts), validated here. */
export const RESPONSE_CLASSIFIERS = CLASSIFIER_KINDS;

export const serviceShape = {
  // Linkerd 1: the whole request, retries included (unset: no bound but the client's own deadlines).
  totalTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  responseClassifier: z
    // io.l5d.h2.* kinds apply to protocol: h2 routers (router/stages/forward/classifier.ts), checked against the protocol in `router`.
    .strictObject({
      kind: z.enum([...RESPONSE_CLASSIFIERS, ...H2_CLASSIFIER_KINDS]),
      // gRPC status codes (Linkerd 1 takes any integer; 0-16 are defined).
      retryableStatusCodes: z.array(z.number().int().min(0)).optional(),
      successStatusCodes: z.array(z.number().int().min(0)).optional(),
    })
    .superRefine((c, ctx) => {
      // As Linkerd 1's classifier configs: each list belongs to the kinds that read it, never ignored elsewhere.
      if (c.successStatusCodes !== undefined && !c.kind.startsWith('io.l5d.h2.grpc.'))
        ctx.addIssue({ code: 'custom', path: ['successStatusCodes'], message: `only the io.l5d.h2.grpc.* classifiers take successStatusCodes, not ${c.kind}` });
      if ((c.retryableStatusCodes !== undefined) !== (c.kind === 'io.l5d.h2.grpc.retryableStatusCodes'))
        ctx.addIssue({
          code: 'custom',
          path: ['retryableStatusCodes'],
          message:
            c.retryableStatusCodes === undefined
              ? 'io.l5d.h2.grpc.retryableStatusCodes needs retryableStatusCodes'
              : `only io.l5d.h2.grpc.retryableStatusCodes takes retryableStatusCodes, not ${c.kind}`,
        });
    })
    .optional(),
  retries: z
    .strictObject({
      budget: retryBudget.optional(),
      backoff: retryBackoff.optional(),
      // hostmesh addition: retries one request may take, whatever the budget holds.
      maxRetriesPerRequest: z.number().int().min(0).max(100).optional(),
    })
    .optional(),
  // Linkerd 1's retryBufferSize: a request body past requestBytes is never sent again.
  retryBufferSize: z
    .strictObject({
      requestBytes: z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024)
        .optional(),
    })
    .optional(),
};

/** Linkerd 1's router `service` block: io.l5d.global, or io.l5d.static configs per logical-name prefix. */
const routerService = scopeKinds('service', serviceShape, serviceShape);

export const clientShape = {
  tls: clientTls.optional(),
  loadBalancer: loadBalancerSchema.optional(),
  hostConnectionPool: z
    .strictObject({
      // Linkerd 1's low watermark: connections kept open while idle (router/stages/endpoint/endpoint-pool.ts).
      minSize: z.number().int().min(0).max(10_000).optional(),
      maxSize: z.number().int().min(1).max(10_000).optional(),
      maxWaiters: z.number().int().min(0).max(100_000).optional(),
      idleTimeMs: z.number().int().min(100).optional(),
    })
    .superRefine((p, ctx) => {
      const max = p.maxSize ?? DEFAULT_POOL_MAX_SIZE;
      if (p.minSize !== undefined && p.minSize > max) {
        const which = p.maxSize === undefined ? `${max}, the default` : String(max);
        ctx.addIssue({
          code: 'custom',
          path: ['minSize'],
          message: `${p.minSize} is more than maxSize (${which}): a pool cannot keep more connections than it may open`,
        });
      }
    })
    .optional(),
  maxWaitMs: z.number().int().min(1).optional(),
  // hostmesh: endpoint pools open at once per router (router/stages/endpoint/endpoint-pool.ts).
  maxEndpointPools: z.number().int().min(1).max(1_000_000).optional(),
  maxInFlightPerSource: z.number().int().min(1).optional(),
  maxInFlightPerService: z.number().int().min(1).optional(),
  // Linkerd 1: the TCP connect and TLS handshake to an endpoint (undici's default 10 s).
  connectTimeoutMs: z.number().int().min(1).max(600_000).optional(),
  headersTimeoutMs: z.number().int().min(100).optional(),
  bodyIdleTimeoutMs: z.number().int().min(100).optional(),
  requestBodyIdleTimeoutMs: z.number().int().min(100).optional(),
  requeueBudget: retryBudget.optional(),
  // Linkerd 1: one attempt (a timed-out attempt is retried when the classifier retries a 503).
  requestAttemptTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  failureAccrual: failureAccrual.optional(),
  // hostmesh: the HTTP/1.1 client to endpoints (core/h1-pool.ts, the default, or undici's Pool).
  engine: z.enum(['lean', 'undici'], { error: 'expected lean (the default) or undici' }).optional(),
};

/** Linkerd 1's router `client` block: io.l5d.global, or io.l5d.static configs per bound-id prefix. */
const clientSchema = scopeKinds('client', clientShape, {
  ...clientShape,
  loadBalancer: notPerPrefix('one load balancer per router; set client.loadBalancer in an io.l5d.global client'),
  // Linkerd 1 keys an io.l5d.global client accepts with a warning: inside a prefix, refused by name.
  ...Object.fromEntries((UNENFORCED['client'] ?? []).map((k) => [k, notPerPrefix('a Linkerd 1 key hostmesh does not enforce')])),
});

const router = z.strictObject({
  protocol: z.enum(['http', 'h2'], { error: protocolError }),
  label: z.string().min(1).optional(),
  dtab: z.string().optional(),
  dtabFile: z.string().min(1).optional(),
  dstPrefix: dtabPath('/svc').optional(),
  identifier: z.union([identifierSchema, z.array(identifierSchema).min(1)]).optional(),
  interpreter: interpreterSchema.optional(),
  servers: z.array(server).min(1),
  client: clientSchema.optional(),
  service: routerService.optional(),
  maxHops: z.number().int().min(1).optional(),
  // Linkerd 1: messages over this size are streamed, smaller ones buffered. hostmesh streams every
  // message (the retry buffer is retryBufferSize), which is this key at 0: validated, nothing to change.
  streamAfterContentLengthKB: z.number().int().min(0).max(1_048_576).optional(),
  // hostmesh addition: most nodes one delegation tree may have (binding and explanations alike).
  bindingBudget: z.number().int().min(100).max(1_000_000).optional(),
  // Linkerd 1: how long a request waits for its name to bind (a namer's first answer).
  bindingTimeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  // hostmesh addition: peer routers that announced a drain, skipped by the balancer (router/stages/concrete/draining-peers.ts).
  drainingPeers: z
    .strictObject({ ttlMs: z.number().int().min(100).max(3_600_000).optional(), max: z.number().int().min(1).max(1_000_000).optional() })
    .optional(),
  // Linkerd 1's binding cache. hostmesh binds (dtab, path) straight to a bound tree, so `paths`
  // and `trees` cap the same cache (the smaller wins); `bounds` and `clients` are accepted for
  // compatibility (endpoint pools have their own limits); `overrides` is a hostmesh addition.
  bindingCache: z
    .strictObject({
      paths: z.number().int().min(1).max(1_000_000).optional(),
      trees: z.number().int().min(1).max(1_000_000).optional(),
      bounds: z.number().int().min(1).max(1_000_000).optional(),
      clients: z.number().int().min(1).max(1_000_000).optional(),
      idleTtlSecs: z.number().int().min(1).optional(),
      overrides: z.number().int().min(1).max(100_000).optional(),
    })
    .optional(),
});

/** h2 server keys and io.l5d.h2.* classifiers belong to protocol: h2 routers; HTTP ones to http routers. */
function checkProtocolKeys(r: { protocol: 'http' | 'h2'; servers: Record<string, unknown>[]; service?: unknown }, ctx: z.RefinementCtx): void {
  if (r.protocol === 'http') {
    r.servers.forEach((s, i) => {
      for (const k of H2_SERVER_KEYS)
        if (s[k] !== undefined) ctx.addIssue({ code: 'custom', path: ['servers', i, k], message: 'only protocol: h2 routers take this key' });
    });
  }
  const svc = r.service as { responseClassifier?: { kind: string }; configs?: { responseClassifier?: { kind: string } }[] } | undefined;
  const kinds = [svc?.responseClassifier?.kind, ...(svc?.configs ?? []).map((c) => c.responseClassifier?.kind)];
  for (const kind of kinds) {
    if (kind === undefined) continue;
    if ((r.protocol === 'h2') !== kind.startsWith('io.l5d.h2.')) {
      ctx.addIssue({ code: 'custom', path: ['service', 'responseClassifier'], message: `${kind} is not a classifier of protocol: ${r.protocol} routers` });
    }
  }
}

export const k8sNamer = z.strictObject({
  kind: z.literal('io.l5d.k8s'),
  prefix: dtabPath('/io.l5d.k8s').optional(),
  host: z.string().min(1).optional(),
  port: port.optional(),
  labelSelector: z.string().optional(),
  api: z.enum(['endpointslices', 'endpoints']).optional(),
  maxNamespaces: z.number().int().min(1).max(1000).optional(),
  idleTtlSecs: z.number().int().min(1).optional(),
  maxIdleNames: z.number().int().min(1).max(1_000_000).optional(),
  transformers: z.array(transformerSchema).optional(),
  maxEndpointsPerService: z.number().int().min(1).max(1_000_000).optional(),
  allowLoopbackEndpoints: z.boolean().optional(),
});

export const fsNamer = z.strictObject({
  kind: z.literal('io.l5d.fs'),
  prefix: dtabPath('/io.l5d.fs').optional(),
  rootDir: z.string().min(1),
  idleTtlSecs: z.number().int().min(1).optional(),
  maxIdleNames: z.number().int().min(1).max(1_000_000).optional(),
  transformers: z.array(transformerSchema).optional(),
});

/** A CIDR as parseCidr reads it (identity/source-guard.ts), its reason as the message. */
function cidrCheck(value: string, ctx: z.RefinementCtx): void {
  try {
    parseCidr(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
}

const WORKERS = "an integer from 1 to 64, or 'auto'";

export const rawConfigSchema = z.strictObject({
  admin: z
    .strictObject({
      ip: ip.default('0.0.0.0'),
      port: port.default(9990),
      allowRemoteShutdown: z.boolean().default(false),
      allowedHosts: z.array(z.string().regex(/^[A-Za-z0-9_~.-]+$/, 'a host name without port or scheme')).optional(),
      // hostmesh addition: sources besides this host that may read config, topology and the dashboard.
      allowedSourceCidrs: z.array(z.string().superRefine(cidrCheck)).optional(),
      // Socket limits of the admin listener (hostmesh additions; defaults in admin-server.ts).
      headersTimeoutMs: z.number().int().min(100).max(600_000).optional(),
      idleTimeoutMs: z.number().int().min(100).optional(),
      maxConnections: z.number().int().min(1).max(1_000_000).optional(),
      maxConnectionsPerSource: z.number().int().min(1).max(1_000_000).optional(),
    })
    .optional(),
  namers: z.array(z.discriminatedUnion('kind', [k8sNamer, fsNamer, rewriteNamer], { error: namerKindError })).default([]),
  routers: z.array(router.superRefine(checkProtocolKeys)).min(1),
  nodeName: z.string().min(1).optional(),
  // hostmesh addition: workload identity (l5d-client-id) across the per-node hop.
  identity: z
    .strictObject({
      trustDomain: z.string().regex(DNS_SUBDOMAIN_NAME, 'a DNS name like cluster.local').optional(),
      /** Watch the cluster's pods (needs pods list/watch); default on with an io.l5d.k8s namer. */
      podWatch: z.boolean().optional(),
      claimWaitMs: z.number().int().min(0).max(60_000).optional(),
      maxClaimWaits: z.number().int().min(0).max(1_000_000).optional(),
      // A certificate for this node from `hostmesh identity` (docs/identity.md), renewed automatically.
      issuer: z
        .strictObject({
          url: z.string().regex(/^https:\/\/[^/\s]+\/?$/, 'an https:// origin, like https://hostmesh-identity.hostmesh.svc:8443'),
          tokenFile: z.string().min(1).default('/var/run/secrets/hostmesh/identity/token'),
          trustBundle: z.string().min(1),
          serverName: z.string().regex(DNS_SUBDOMAIN_NAME, 'a DNS name').optional(),
          renewFraction: z.number().min(0.1).max(0.95).optional(),
          retryMinMs: z.number().int().min(100).max(600_000).optional(),
          retryMaxMs: z.number().int().min(100).max(3_600_000).optional(),
          requestTimeoutMs: z.number().int().min(100).max(300_000).optional(),
        })
        .optional(),
    })
    .optional(),
  // hostmesh addition: bounds of the /$/inet addresses dtabs name (overrides are request data).
  inet: z
    .strictObject({
      idleTtlSecs: z.number().int().min(1).optional(),
      maxNames: z.number().int().min(0).max(1_000_000).optional(),
    })
    .optional(),
  shutdownGraceMs: z.number().int().min(0).default(10_000),
  // hostmesh addition: router processes sharing the routers' ports (docs/cores.md); auto = the CPUs the cgroup's quota allows.
  workers: z
    .union([z.literal('auto', { error: WORKERS }), z.number({ error: WORKERS }).int({ error: WORKERS }).min(1, { error: WORKERS }).max(64, { error: WORKERS })])
    .optional(),
  // hostmesh addition: before the drain, serve this long telling peer routers (l5d-hostmesh-draining) to stop choosing this node.
  drainAnnounceMs: z.number().int().min(0).max(60_000).optional(),
  // hostmesh addition: the authorization policy (docs/authz.md); absent = allow everything.
  authz: z
    .strictObject({
      policyFile: z.string().min(1),
      pollMs: z.number().int().min(100).max(3_600_000).optional(),
      parserMemoryMb: z.number().int().min(32).max(4096).optional(),
    })
    .optional(),
});

export type RawConfig = z.infer<typeof rawConfigSchema>;
