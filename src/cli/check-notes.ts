// What `run --check` prints after "ok": where the node name will come from, and the Linkerd 1 keys
// this config uses that hostmesh accepts without enforcing (the README promises this list).

import type { HostmeshConfig } from '../config/types.js';
import { nodeNamePlan } from '../k8s/own-node.js';
import { workerCount } from '../app/workers.js';

/** The key path of an "accepted, not enforced" warning (`file:l:c: <path>: accepted, not enforced...`). */
function unenforcedPath(warning: string): string | undefined {
  // `telemetry[1]: io.l5d.zipkin: accepted, not enforced: ...` names the kind after the path.
  const m = /^(?:.*?:\d+:\d+: )?(\S+?)(?:: (\S+))?: accepted, not enforced/.exec(warning);
  if (m === null) return undefined;
  return m[2] !== undefined ? `${m[1]} (${m[2]})` : m[1];
}

export function checkNotes(config: HostmeshConfig, warnings: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const notes: string[] = [];
  const plan = nodeNamePlan(config.nodeName, env);
  if (plan.kind === 'given') notes.push(`node name: ${plan.node} (${plan.how})`);
  else if (plan.kind === 'api') notes.push(`node name: found at start ${plan.how}`);
  else notes.push(`node name: none (${plan.why})`);
  for (const r of config.routers) {
    const n = r.namerd;
    if (n !== undefined) {
      notes.push(
        `router ${r.label}: dtab read at start from namerd's Kubernetes storage: dtabs.l5d.io ${n.namespace} in namespace ${n.storageNamespace} (interpreter ${n.kind}; namerd at ${n.dst} is not contacted)`,
      );
    }
  }
  if (config.workers !== undefined && config.workers !== 1) {
    const n = workerCount(config.workers);
    notes.push(
      `workers: ${n} router processes${config.workers === 'auto' ? ' (auto, on this machine)' : ''}${n > 1 ? `; every router limit applies per worker (docs/cores.md)` : ''}`,
    );
  }
  const unenforced = warnings.flatMap((w) => unenforcedPath(w) ?? []);
  notes.push(
    unenforced.length === 0
      ? 'accepted, not enforced: none (every key of this config is enforced)'
      : `accepted, not enforced (${unenforced.length}): ${unenforced.join(', ')} (the warnings above say what each one loses)`,
  );
  return notes;
}
