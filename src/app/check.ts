// What `run --check` adds to config validation: the routers' identifiers and transformers built by
// the very code the composition root uses, short of namers, ports and certificates (checked apart).

import { parsePath } from '../dtab/parse.js';
import type { HostmeshConfig } from '../config/types.js';
import { nodeNamePlan } from '../k8s/own-node.js';
import { NameInterpreter } from '../namer/interpreter.js';
import { buildIdentifiers } from '../router/stages/identify/identifiers.js';
import { DEFAULT_IDENTIFIERS } from './routers.js';
import { buildTransforms } from './transformers.js';

/** Problems a config would meet at start (a localnode transformer without a node name, a bad identifier option). One line each. */
export function checkRouters(given: HostmeshConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  // A node name the API will give at start (POD_IP, HOSTNAME) counts as one here.
  const plan = nodeNamePlan(given.nodeName, env);
  const config = plan.kind === 'api' ? { ...given, nodeName: '(found at start)' } : given;
  const interpreter = new NameInterpreter({ namers: [] });
  for (const r of config.routers) {
    try {
      buildIdentifiers(r.identifier.length > 0 ? r.identifier : DEFAULT_IDENTIFIERS, parsePath(r.dstPrefix ?? '/svc'));
    } catch (err) {
      problems.push(`router ${r.label}: ${(err as Error).message}`);
    }
    try {
      buildTransforms(r.label, r.transformers, config, interpreter).close();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  // Linkerd 1's namers[].transformers, built as at start (a localnode there needs the node name too).
  for (const n of config.namers) {
    if (n.kind === 'io.l5d.rewrite' || n.transformers === undefined) continue;
    try {
      buildTransforms(`namer ${n.prefix}`, n.transformers, config, interpreter).close();
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}
