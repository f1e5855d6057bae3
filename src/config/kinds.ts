// Strict schemas for the `kind`-selected config objects (identifiers, transformers, load
// balancers): a typo in an option or a kind hostmesh does not build is an error with its key path.

import { z } from 'zod';
import { parsePath } from '../dtab/parse.js';
import { parseConfigPrefix } from '../router/settings/static-params.js';

const port = z.number().int().min(1).max(65535);

/**
 * A dtab path (`/svc/name`), read by the dtab parser here so that `run --check` reports a bad one
 * at its file:line:col (the router reads it again when it is built).
 */
export function dtabPath(example: string) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      if (!value.startsWith('/')) {
        ctx.addIssue({ code: 'custom', message: `a path like ${example}` });
        return;
      }
      try {
        parsePath(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `a path like ${example}: ${(err as Error).message}` });
      }
    });
}

const pathOption = dtabPath('/svc/name');

/**
 * An error for a kind outside the supported list that names what is supported, so
 * `kind: io.l5d.ingress` says "not supported" instead of zod's "invalid discriminator".
 */
function kindError(what: string, kinds: readonly string[], refused: Readonly<Record<string, string>> = {}): z.core.$ZodErrorMap {
  return (issue) => {
    const kind = (issue.input as { kind?: unknown } | undefined)?.kind;
    if (typeof kind === 'string' && Object.hasOwn(refused, kind)) return `${what} kind ${kind} is refused: ${refused[kind]}`;
    if (kind !== undefined) return `${what} kind ${JSON.stringify(kind)} is not supported; supported kinds: ${kinds.join(', ')}`;
    return `${what} needs a kind; supported kinds: ${kinds.join(', ')}`;
  };
}

// --- identifiers (Linkerd 1's `identifier`) ---------------------------------------------------

const dstPrefix = { dstPrefix: pathOption.optional() };

const identifierKinds = [
  z.strictObject({ kind: z.literal('io.l5d.header.token'), header: z.string().min(1).optional(), ...dstPrefix }),
  z.strictObject({ kind: z.literal('io.l5d.methodAndHost'), httpUriInDst: z.boolean().optional(), ...dstPrefix }),
  z.strictObject({ kind: z.literal('io.l5d.path'), segments: z.number().int().min(1).optional(), consume: z.boolean().optional(), ...dstPrefix }),
  z.strictObject({ kind: z.literal('io.l5d.header'), header: z.string().min(1).optional(), ...dstPrefix }),
  z.strictObject({ kind: z.literal('io.l5d.static'), path: pathOption, ...dstPrefix }),
  // Linkerd 1's h2 identifier: a header's path (`:path` by default), all of it or its first `segments`
  // (gRPC with segments 1: /pkg.Service/Method -> /svc/pkg.Service).
  z.strictObject({
    kind: z.literal('io.l5d.header.path'),
    header: z.string().min(1).optional(),
    segments: z.number().int().min(1).optional(),
    ...dstPrefix,
  }),
  // Linkerd 1's ingress identifier (router/stages/identify/ingress.ts); maxIngresses/maxRulesPerIngress are hostmesh's bounds.
  z.strictObject({
    kind: z.literal('io.l5d.ingress'),
    namespace: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: port.optional(),
    ingressClassAnnotation: z.string().min(1).optional(),
    ignoreDefaultBackends: z.boolean().optional(),
    maxIngresses: z.number().int().min(1).optional(),
    maxRulesPerIngress: z.number().int().min(1).optional(),
    ...dstPrefix,
  }),
] as const;

export const IDENTIFIER_KINDS = identifierKinds.map((s) => s.shape.kind.value);
/** Linkerd 1 identifier kinds hostmesh does not build, and why. */
const REFUSED_IDENTIFIERS: Readonly<Record<string, string>> = {
  'io.l5d.k8s.istio':
    "Linkerd 1's Istio integration (Pilot route rules, deprecated there) is not built; name requests with io.l5d.header.token and route with the dtab",
};

export const identifierSchema = z.discriminatedUnion('kind', identifierKinds, { error: kindError('identifier', IDENTIFIER_KINDS, REFUSED_IDENTIFIERS) });

// --- transformers (Linkerd 1's `interpreter.transformers`) --------------------------------------

/**
 * Linkerd 1's `hostNetwork` told its daemonset/localnode transformers to match nodes by IP; hostmesh
 * always matches by the endpoint's nodeName, which works either way, so the key is accepted as is.
 */
const hostNetwork = { hostNetwork: z.boolean().optional() };

const transformerKinds = [
  z.strictObject({
    kind: z.literal('io.l5d.k8s.daemonset'),
    namespace: z.string().min(1).optional(),
    port: z.string().min(1).optional(),
    service: z.string().min(1).optional(),
    /** hostmesh: the path that binds the routers directly (default /#/io.l5d.k8s/<ns>/<port>/<service>). */
    routers: pathOption.optional(),
    ...hostNetwork,
  }),
  // hostNetworkPods (hostmesh's own, default false): the incoming router may deliver to hostNetwork pods (router/stages/concrete/delivery.ts).
  z.strictObject({ kind: z.literal('io.l5d.k8s.localnode'), ...hostNetwork, hostNetworkPods: z.boolean().optional() }),
  z.strictObject({ kind: z.literal('io.l5d.port'), port }),
  z.strictObject({ kind: z.literal('io.l5d.replace'), path: pathOption }),
  // Linkerd 1's const takes `path` (what every name binds to instead); `addrs` is hostmesh's own
  // shorthand for fixed addresses. One of the two.
  z
    .strictObject({
      kind: z.literal('io.l5d.const'),
      path: pathOption.optional(),
      addrs: z
        .array(z.strictObject({ ip: z.string().min(1), port }))
        .min(1)
        .optional(),
    })
    .refine((c) => (c.path === undefined) !== (c.addrs === undefined), { message: 'io.l5d.const needs either path (as Linkerd 1) or addrs', path: ['path'] }),
  z.strictObject({ kind: z.literal('io.l5d.localhost') }),
  z.strictObject({ kind: z.literal('io.l5d.specificHost'), host: z.string().min(1) }),
] as const;

export const TRANSFORMER_KINDS = transformerKinds.map((s) => s.shape.kind.value);
export const transformerSchema = z.discriminatedUnion('kind', transformerKinds, { error: kindError('transformer', TRANSFORMER_KINDS) });

// --- load balancers (Linkerd 1's `client.loadBalancer`) ----------------------------------------

/**
 * Linkerd 1's aperture and heap balancers are not built: they are refused by name rather than
 * silently replaced by p2c. `maxEffort` (retries to find a live endpoint) and ewma's `decayTimeMs`
 * are not enforced and warn (see UNENFORCED_OPTIONS).
 */
const balancerKinds = [
  z.strictObject({ kind: z.literal('p2c') }),
  z.strictObject({ kind: z.literal('ewma') }),
  z.strictObject({ kind: z.literal('roundRobin') }),
] as const;

export const BALANCER_KINDS = balancerKinds.map((s) => s.shape.kind.value);
export const loadBalancerSchema = z.discriminatedUnion('kind', balancerKinds, { error: kindError('loadBalancer', BALANCER_KINDS) });

/** Linkerd 1 options of kinded objects that hostmesh accepts with a warning, by `<what>:<kind>`. */
export const UNENFORCED_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  'loadBalancer:p2c': ['maxEffort', 'enableProbation'],
  'loadBalancer:ewma': ['maxEffort', 'decayTimeMs', 'enableProbation'],
  'loadBalancer:roundRobin': ['maxEffort', 'enableProbation'],
  // Linkerd 1's daemonset transformer read the API itself; hostmesh's binds the routers through the io.l5d.k8s namer.
  // Every Linkerd 1 transformer takes `prefix`: the path its transformed bound ids start with
  // (/%/<prefix>/<id>). hostmesh keeps bound ids as the namer made them (docs/linkerd1-migration.md).
  ...Object.fromEntries(TRANSFORMER_KINDS.map((k) => [`transformer:${k}`, k === 'io.l5d.k8s.daemonset' ? ['k8sHost', 'k8sPort', 'prefix'] : ['prefix']])),
};

// --- service and client kinds (Linkerd 1's `service.kind` / `client.kind`) ----------------------

/** Linkerd 1's service and client config kinds: one config for all (default) or configs per prefix. */
export const SCOPE_KINDS = ['io.l5d.global', 'io.l5d.static'] as const;

/** A `configs[].prefix`: a dtab prefix (`*` elements) whose `{name}` elements capture a label. */
const configPrefix = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    // Linkerd 1 named a transformed address /%/<transformer>/.../#/<namer>/...; hostmesh's bound ids
    // are the namer's path alone, so such a prefix would match nothing and its settings (TLS!) never apply.
    if (value.startsWith('/%/')) {
      const rest = value.indexOf('/#/');
      ctx.addIssue({
        code: 'custom',
        message: `a /%/ prefix names a transformer's output, which hostmesh's bound ids do not carry (they are the namer's path, transformed or not): write ${rest >= 0 ? value.slice(rest) : 'the /#/ path of the namer'} instead`,
      });
      return;
    }
    try {
      parseConfigPrefix(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/**
 * Keys of a prefix config the router applies per name; any other key present in a prefix config is
 * an error naming it (a per-prefix setting the router would not apply must never load silently).
 */
/** A client's plain number keys (pool fairness and timeouts): copied as they are, and enforced per prefix too. */
export const CLIENT_NUMBER_KEYS = [
  'maxWaitMs',
  'maxInFlightPerSource',
  'maxInFlightPerService',
  'connectTimeoutMs',
  'headersTimeoutMs',
  'bodyIdleTimeoutMs',
  'requestBodyIdleTimeoutMs',
  'requestAttemptTimeoutMs',
  'maxEndpointPools',
] as const;

export const PER_PREFIX_ENFORCED: Readonly<Record<'service' | 'client', readonly string[]>> = {
  // router/settings/per-name.ts (retry policy, classifier, budgets) and stages/identify/identify.ts (totalTimeoutMs).
  service: ['totalTimeoutMs', 'responseClassifier', 'retries', 'retryBufferSize'],
  // router/stages/endpoint/client-pools.ts: TLS and pool limits make a client's own pools; per-name.ts the rest
  // (a per-prefix failureAccrual gets its own accrual state, read by stages/concrete/concrete.ts and endpoint.ts).
  client: ['tls', 'hostConnectionPool', ...CLIENT_NUMBER_KEYS, 'requeueBudget', 'failureAccrual', 'engine'],
};

/**
 * `io.l5d.global` (the keys inline, the default when `kind` is absent) or `io.l5d.static` (only
 * `configs: [{prefix, ...the same keys}]`, as Linkerd 1). `notPerPrefix` keys are refused by name
 * inside a prefix config; every other key is validated exactly as the global one.
 */
export function scopeKinds<G extends z.core.$ZodLooseShape, P extends z.core.$ZodLooseShape>(what: 'service' | 'client', global: G, perPrefix: P) {
  const enforced = new Set(['prefix', ...PER_PREFIX_ENFORCED[what]]);
  const prefixConfig = z.strictObject({ prefix: configPrefix, ...perPrefix }).superRefine((c, ctx) => {
    for (const key of Object.keys(c)) {
      if (!enforced.has(key)) {
        const supported = [...enforced].filter((k) => k !== 'prefix');
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `not enforced per prefix yet (${supported.length > 0 ? `per-prefix keys: ${supported.join(', ')}` : 'no per-prefix key is'}); set it in an io.l5d.global ${what} instead`,
        });
      }
    }
  });
  return z.discriminatedUnion(
    'kind',
    [
      z.strictObject({ kind: z.literal('io.l5d.global').optional(), ...global }),
      // As Linkerd 1: a static scope has only its configs; a key beside them is named, not "unknown".
      z.looseObject({ kind: z.literal('io.l5d.static'), configs: z.array(prefixConfig).min(1) }).superRefine((v, ctx) => {
        for (const key of Object.keys(v)) {
          if (key === 'kind' || key === 'configs') continue;
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `with kind: io.l5d.static every ${what} key goes inside a configs entry (prefix: / applies to every name)`,
          });
        }
      }),
    ],
    { error: kindError(what, SCOPE_KINDS) },
  );
}

/** A key Linkerd 1 allows in a prefix config that hostmesh keeps per router: refused by name. */
export function notPerPrefix(why: string) {
  return z.never({ error: `not supported per prefix: ${why}` }).optional();
}
