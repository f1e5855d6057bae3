// Linkerd 1's `routers[].interpreter`: how names are bound. `default` binds with the configured
// namers; the namerd interpreters (io.l5d.namerd thrift, io.l5d.namerd.http, io.l5d.mesh gRPC)
// take the dtab from namerd. hostmesh reads that dtab where namerd's io.l5d.k8s storage keeps it
// (dtabs.l5d.io objects named after the namerd namespace) and binds it with its own namers, so no
// namerd runs in the request path (docs/linkerd1-namerd.md says why). io.l5d.fs is a dtabFile.
// Every other kind is refused with the reason.

import { z } from 'zod';
import { dtabPath, transformerSchema } from './kinds.js';
import type { NamerdDtabConfig } from '../server/namerd-dtab.js';
export type { NamerdDtabConfig } from '../server/namerd-dtab.js';

const pathOption = dtabPath('/$/inet/namerd.default.svc.cluster.local/4100');
const transformers = { transformers: z.array(transformerSchema).optional() };

/** Where namerd keeps its dtabs: its `storage: {kind: io.l5d.k8s, host, port, namespace}` (hostmesh key). */
const dtabStorage = z
  .strictObject({
    namespace: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
  })
  .optional();

/** Keys about the connection to namerd itself: accepted, and said not to be used (namerd is not contacted). */
const namerdConnection = {
  dst: pathOption,
  retry: z.strictObject({ baseSeconds: z.number().int().min(0).optional(), maxSeconds: z.number().int().min(0).optional() }).optional(),
  tls: z.looseObject({}).optional(),
  failureThreshold: z.looseObject({}).optional(),
  dtabStorage,
  ...transformers,
};

export const NAMERD_KINDS = ['io.l5d.namerd', 'io.l5d.namerd.http', 'io.l5d.mesh'] as const;

/** Kinds Linkerd 1 had that hostmesh refuses, and why. */
const REFUSED_KINDS: Readonly<Record<string, string>> = {
  'io.l5d.consul.interpreter': 'Consul is not Kubernetes discovery: hostmesh binds names with Kubernetes (io.l5d.k8s) and files (io.l5d.fs) only',
  'io.l5d.k8s.configMap':
    'not built: mount the ConfigMap as a volume and name the file in dtabFile (hostmesh watches it and reloads the dtab without restart, as this interpreter did)',
};

const kinds = [
  z.strictObject({ kind: z.literal('default').optional(), ...transformers }),
  z.strictObject({ kind: z.literal('io.l5d.namerd'), namespace: z.string().min(1).optional(), ...namerdConnection }),
  z.strictObject({
    kind: z.literal('io.l5d.namerd.http'),
    namespace: z.string().min(1).optional(),
    experimental: z.boolean().optional(),
    ...namerdConnection,
  }),
  z.strictObject({
    kind: z.literal('io.l5d.mesh'),
    root: z
      .string()
      .regex(/^\/[^/]+$/, 'a one-element path like /default (the namerd namespace)')
      .optional(),
    initialStreamWindowSizeKB: z.number().int().min(1).optional(),
    ...namerdConnection,
  }),
  z.strictObject({ kind: z.literal('io.l5d.fs'), dtabFile: z.string().min(1), ...transformers }),
] as const;

const SUPPORTED = ['default', ...NAMERD_KINDS, 'io.l5d.fs'];

export const interpreterSchema = z.discriminatedUnion('kind', kinds, {
  error: (issue) => {
    const kind = (issue.input as { kind?: unknown } | undefined)?.kind;
    if (typeof kind === 'string' && kind in REFUSED_KINDS) return `interpreter kind ${kind} is refused: ${REFUSED_KINDS[kind]}`;
    return `interpreter kind ${JSON.stringify(kind)} is not supported; supported kinds: ${SUPPORTED.join(', ')}`;
  },
});

export type RawInterpreter = z.infer<typeof interpreterSchema>;
type NamerdInterpreter = Extract<RawInterpreter, { kind: (typeof NAMERD_KINDS)[number] }>;

function isNamerd(i: RawInterpreter | undefined): i is NamerdInterpreter {
  return i !== undefined && (NAMERD_KINDS as readonly (string | undefined)[]).includes(i.kind);
}

/** The namerd dtab a router's interpreter asks for, or undefined for default and io.l5d.fs. */
export function namerdDtab(i: RawInterpreter | undefined): NamerdDtabConfig | undefined {
  if (!isNamerd(i)) return undefined;
  const namespace = i.kind === 'io.l5d.mesh' ? (i.root ?? '/default').slice(1) : (i.namespace ?? 'default');
  return {
    kind: i.kind,
    namespace,
    storageNamespace: i.dtabStorage?.namespace ?? 'default',
    ...(i.dtabStorage?.host !== undefined ? { host: i.dtabStorage.host } : {}),
    ...(i.dtabStorage?.port !== undefined ? { port: i.dtabStorage.port } : {}),
    dst: i.dst,
  };
}

/** What a namerd interpreter's keys about namerd itself lose (warnings: namerd is not contacted). */
export function namerdWarnings(i: RawInterpreter | undefined): { key: string; message: string }[] {
  if (!isNamerd(i)) return [];
  const out = [
    {
      key: 'dst',
      message: `namerd at ${i.dst} is not contacted: the dtab is read from namerd's Kubernetes storage (dtabs.l5d.io) and bound with this router's own namers; a namerd with another storage (ZooKeeper, etcd, Consul, in memory) is not supported`,
    },
  ];
  for (const key of ['retry', 'tls', 'failureThreshold', 'initialStreamWindowSizeKB'] as const) {
    if (key in i) out.push({ key, message: 'accepted, not enforced: it configures the connection to namerd, which hostmesh does not open' });
  }
  return out;
}
