// Namer kinds beyond io.l5d.k8s and io.l5d.fs: Linkerd 1's io.l5d.rewrite (built), and the
// discovery systems that are not Kubernetes, refused by name with the reason.

import { z } from 'zod';
import { RewriteNamer } from '../namer/rewrite-namer.js';

export const rewriteNamer = z
  .strictObject({
    kind: z.literal('io.l5d.rewrite'),
    prefix: z.string().regex(/^\/[^/]/, 'a path like /portNsSvcToK8s'),
    pattern: z.string().min(1),
    name: z.string().min(1),
  })
  .superRefine((n, ctx) => {
    try {
      new RewriteNamer(n);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** Linkerd 1 namer kinds for discovery systems other than Kubernetes. */
const NOT_KUBERNETES: Readonly<Record<string, string>> = {
  'io.l5d.consul': 'Consul',
  'io.l5d.marathon': 'Marathon',
  'io.l5d.zk': 'ZooKeeper',
  'io.l5d.serversets': 'ZooKeeper serversets',
  'io.l5d.zkLeader': 'ZooKeeper leader election',
  'io.l5d.curator': 'Curator (ZooKeeper)',
  'io.l5d.dnssrv': 'DNS SRV',
  'io.l5d.rancher': 'Rancher',
  'io.l5d.k8s.external': 'Kubernetes external load balancers',
  'io.l5d.k8s.ns': 'the namespaced Kubernetes namer (use io.l5d.k8s with the namespace in the path)',
  'io.l5d.k8s.istio': "Istio's Pilot (Linkerd 1's deprecated Istio integration)",
};

export const namerKindError: z.core.$ZodErrorMap = (issue) => {
  const kind = (issue.input as { kind?: unknown } | undefined)?.kind;
  if (typeof kind === 'string' && kind in NOT_KUBERNETES) {
    return `namer kind ${kind} is refused: ${NOT_KUBERNETES[kind]} is not discovery hostmesh does; it binds names with Kubernetes (io.l5d.k8s), files (io.l5d.fs) and io.l5d.rewrite`;
  }
  return `namer kind ${JSON.stringify(kind)} is not supported; supported kinds: io.l5d.k8s, io.l5d.fs, io.l5d.rewrite`;
};

/** Router protocols Linkerd 1 had: h2 waits on HTTP/2 routers; the others are not HTTP. */
export const protocolError: z.core.$ZodErrorMap = (issue) => {
  const p = issue.input;
  if (p === 'thrift' || p === 'mux' || p === 'thriftmux') return `protocol ${p} is refused: hostmesh routes HTTP only (HTTP/1.1 and h2; ${p} is not HTTP)`;
  return `protocol ${JSON.stringify(p)} is not supported; supported: http, h2`;
};
