// Checks and warnings of `routers[].interpreter` that need the whole config: a namerd or io.l5d.fs
// interpreter beside a router dtab (two dtabs, one would be silently ignored), what the namerd keys
// lose, and the io.l5d.k8s namer a namerd config leaves to namerd (added, with a warning).

import type { RawConfig } from './schema.js';
import type { HostmeshConfig } from './types.js';
import { namerdWarnings } from './interpreter.js';

export { namerdDtab } from './interpreter.js';

type Key = string | number;

export function interpreterProblems(raw: RawConfig, config: HostmeshConfig, warn: (path: Key[], message: string) => void): { path: Key[]; message: string }[] {
  const problems: { path: Key[]; message: string }[] = [];
  raw.routers.forEach((r, i) => {
    const kind = r.interpreter?.kind;
    if (kind === undefined || kind === 'default') return;
    for (const key of ['dtab', 'dtabFile'] as const) {
      if (r[key] !== undefined) {
        const source = kind === 'io.l5d.fs' ? 'the interpreter dtabFile' : `namerd (interpreter ${kind})`;
        problems.push({ path: ['routers', i, key], message: `this router's dtab comes from ${source}: remove ${key}, it would be ignored` });
      }
    }
    for (const w of namerdWarnings(r.interpreter)) warn(['routers', i, 'interpreter', w.key], w.message);
  });
  // Linkerd 1: "any namers configured in this Linkerd are not used" with namerd; namerd binds with its
  // own (in the DaemonSet examples, io.l5d.k8s). hostmesh binds here, so it needs one.
  const namerd = config.routers.find((r) => r.namerd !== undefined)?.namerd;
  if (namerd !== undefined && !config.namers.some((n) => n.kind === 'io.l5d.k8s')) {
    config.namers.push({
      kind: 'io.l5d.k8s',
      prefix: '/io.l5d.k8s',
      ...(namerd.host !== undefined ? { host: namerd.host } : {}),
      ...(namerd.port !== undefined ? { port: namerd.port } : {}),
    });
    warn(
      ['routers', config.routers.findIndex((r) => r.namerd !== undefined), 'interpreter'],
      "namerd's dtab is bound with an io.l5d.k8s namer at /#/io.l5d.k8s added by hostmesh (namerd's own namers are not read): add a namers entry if namerd mounts other namers or prefixes",
    );
  }
  return problems;
}
