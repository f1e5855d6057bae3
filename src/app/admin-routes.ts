// The admin pages the running mesh adds to the admin server (admin/admin-server.ts): namer state,
// authorization callers and explanations, Linkerd 1's admin paths, readiness and state metrics.

import { explainJson } from '../admin/authz-explain.js';
import { sendJson, type AdminServer } from '../admin/admin-server.js';
import { installLinkerd1Admin } from '../admin/linkerd1-admin.js';
import { Policy } from '../authz/policy.js';
import { PodIndex } from '../identity/pod-directory.js';
import type { Namer } from '../namer/addr.js';
import type { AppContext } from './context.js';
import type { RunningRouter } from './routers.js';

export function installAdminRoutes(admin: AdminServer, ctx: AppContext, routers: readonly RunningRouter[], namers: readonly Namer[]): void {
  const { metrics, policyWatcher, interpreter, podSource, nodeCert, k8sPrefix } = ctx;
  installLinkerd1Admin(admin, { metrics, routers, prometheus: ctx.config.telemetry?.prometheus, accessLogs: ctx.accessLogs });
  for (const n of namers) {
    const state = n.stateJson?.bind(n);
    if (state !== undefined) admin.route(`/namer_state/${n.kind}.json`, (_req, res) => sendJson(res, 200, state()));
  }
  admin.route('/authz/callers.json', (_req, res) =>
    sendJson(res, 200, {
      policy: policyWatcher !== undefined,
      routers: routers.map((r) => ({ label: r.label, destinations: metrics.router(r.label).router.authzCallers.view() })),
    }),
  );
  const allowAll = Policy.allowAll();
  admin.route('/authz/explain.json', (_req, res, url) => explainJson(res, policyWatcher?.policy ?? allowAll, policyWatcher !== undefined, url, k8sPrefix));
  // Ready once every Kubernetes namer has listed the namespaces the routers' own config watches
  // (transformers bind at start). Namespaces a request names later never make a node unready.
  const namersReady = namers.flatMap((n) => (n.startupReadiness !== undefined ? [n.startupReadiness()] : []));
  // The pod watch too: until it has listed, local pods cannot be told from strangers.
  // And, with identity.issuer, a node certificate valid now: without one peers refuse this router.
  admin.readyCheck = () => podSource.pods.synced && namersReady.every((ready) => ready()) && (nodeCert === undefined || nodeCert.valid());
  metrics.reportState({
    routers: () => routers.map((r) => ({ label: r.label, bindings: r.router.bindingCacheSize })),
    interpreter: () => ({ lookups: interpreter.lookupCount, bindings: interpreter.bindingCount }),
    namers: () => [...namers.flatMap((n) => (n.stats !== undefined ? [{ kind: n.kind, ...n.stats() }] : [])), { kind: 'inet', ...interpreter.inetStats() }],
    pods: () => (podSource.pods instanceof PodIndex ? { conflictsSeen: podSource.pods.conflictsSeen, conflictedIps: podSource.pods.conflictedIps } : undefined),
  });
}
