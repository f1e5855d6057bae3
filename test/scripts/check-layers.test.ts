// The layer check `npm run lint` runs (scripts/check-layers.mjs): on a planted tree, each kind of
// violation is reported as `file:line: ...` and fails the run; a tree that keeps the layers passes.
// The command itself runs twice (a clean tree, a violation); the other cases call its checkLayers.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t, { type Test } from 'tap';
import { childEnv } from '../helpers/paths.js';

/** The script in the repository, whether this file runs from test/ or compiled from dist/test/. */
function findScript(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    const script = join(dir, 'scripts', 'check-layers.mjs');
    if (existsSync(script)) return script;
  }
  throw new Error('scripts/check-layers.mjs not found above this test');
}
const SCRIPT = findScript();
const { checkLayers } = (await import(pathToFileURL(SCRIPT).href)) as { checkLayers: (root: string) => string[] };

function plant(t: Test, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'layers-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The command on a tree of `files` (path under the root -> text): its exit code and output lines. */
function run(t: Test, files: Record<string, string>): { code: number | null; lines: string[]; summary: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--root', plant(t, files)], { encoding: 'utf8', env: childEnv() });
  const all = r.stdout.split('\n').filter((l) => l !== '');
  return { code: r.status, lines: all.filter((l) => !l.startsWith('check-layers:')), summary: all.filter((l) => l.startsWith('check-layers:')).join('') };
}

/** The check in-process: what it finds, and whether the command would fail. */
function check(t: Test, files: Record<string, string>): { code: number; lines: string[] } {
  const lines = checkLayers(plant(t, files));
  return { code: lines.length > 0 ? 1 : 0, lines };
}

/** A tree that keeps the layers: each folder imports only lower ones, files without cycles. */
const CLEAN: Record<string, string> = {
  'src/errors.ts': 'export class HostmeshError extends Error {}\n',
  'src/core/clock.ts': 'export const now = () => 0;\n',
  'src/dtab/path.ts': "import { now } from '../core/clock.js';\nexport const p = now;\n",
  'src/dtab/dtab.ts': "import { p } from './path.js';\nexport const d = p;\n",
  'src/namer/addr.ts': "import type { d } from '../dtab/dtab.js';\nexport type A = typeof d;\n",
  'src/identity/names.ts': 'export const n = 1;\n',
  'src/authz/policy.ts': "import { n } from '../identity/names.js';\nexport const q = n;\n",
  'src/router/router.ts': "import type { A } from '../namer/addr.js';\nimport { HostmeshError } from '../errors.js';\nexport type R = A | HostmeshError;\n",
  'src/cli/main.ts': "import '../demo/demo.js';\nimport type { R } from '../router/router.js';\nexport type M = R;\n",
  'src/demo/demo.ts': "import type { R } from '../router/router.js';\nexport type D = R;\n",
};

t.test('a tree that keeps the layers passes, sub-layers included (authz -> identity, cli -> demo)', async (t) => {
  const r = run(t, CLEAN);
  t.same(r.lines, []);
  t.equal(r.summary, '');
  t.equal(r.code, 0);
});

t.test('an upward import is reported at its line and fails the run', async (t) => {
  const r = run(t, {
    ...CLEAN,
    'src/h2/grpc.ts': "// gRPC pieces\n\nimport { classify } from '../router/classify.js';\nexport const g = classify;\n",
    'src/router/classify.ts': 'export const classify = 1;\n',
  });
  t.equal(r.code, 1);
  t.same(r.lines, ['src/h2/grpc.ts:3: h2 imports router (layer 3a -> layer 4, upward: ../router/classify.js)']);
  t.match(r.summary, /^check-layers: 1 violation of the layers/);
});

t.test('type-only imports, re-exports and import() count like imports', async (t) => {
  const r = check(t, {
    ...CLEAN,
    'src/identity/caller.ts': "import type { R } from '../router/router.js';\nexport type C = R;\n",
    'src/tls/reload.ts': "export type { R } from '../router/router.js';\n",
    'src/k8s/client.ts': "export async function load() {\n  return await import('../config/load.js');\n}\n",
    'src/config/load.ts': 'export const l = 1;\n',
  });
  t.equal(r.code, 1);
  t.same(r.lines.sort(), [
    'src/identity/caller.ts:1: identity imports router (layer 3a -> layer 4, upward: ../router/router.js)',
    'src/k8s/client.ts:2: k8s imports config (layer 1 -> layer 7, upward: ../config/load.js)',
    'src/tls/reload.ts:1: tls imports router (layer 2 -> layer 4, upward: ../router/router.js)',
  ]);
});

t.test('folders of one layer may not import each other; a lower sub-layer may not import a higher one', async (t) => {
  const r = check(t, {
    ...CLEAN,
    'src/tls/files.ts': "import type { A } from '../namer/addr.js';\nexport type F = A;\n",
    'src/identity/policy-view.ts': "import { q } from '../authz/policy.js';\nexport const v = q;\n",
    'src/server/listener.ts': "import type { M } from '../metrics/metrics.js';\nexport type L = M;\n",
    'src/metrics/metrics.ts': 'export type M = number;\n',
  });
  t.equal(r.code, 1);
  t.same(r.lines.sort(), [
    'src/identity/policy-view.ts:1: identity imports authz (layer 3a -> layer 3b, upward: ../authz/policy.js)',
    'src/server/listener.ts:1: server imports metrics (layer 5 -> layer 5, same layer: ../metrics/metrics.js)',
    'src/tls/files.ts:1: tls imports namer (layer 2 -> layer 2, same layer: ../namer/addr.js)',
  ]);
});

t.test('two files of a folder importing each other (the old dtab.ts <-> parse.ts) are a cycle, each edge at its line', async (t) => {
  const r = check(t, {
    ...CLEAN,
    'src/dtab/dtab.ts': "import { p } from './path.js';\nimport { parseDtab } from './parse.js';\nexport const d = p;\nexport const read = parseDtab;\n",
    'src/dtab/parse.ts': "import type { d } from './dtab.js';\nexport const parseDtab = (): typeof d => 0;\n",
  });
  t.equal(r.code, 1);
  t.same(r.lines, [
    'src/dtab/dtab.ts:2: src/dtab/dtab.ts imports src/dtab/parse.ts (file cycle: src/dtab/dtab.ts -> src/dtab/parse.ts -> src/dtab/dtab.ts)',
    'src/dtab/parse.ts:1: src/dtab/parse.ts imports src/dtab/dtab.ts (file cycle: src/dtab/dtab.ts -> src/dtab/parse.ts -> src/dtab/dtab.ts)',
  ]);
});

t.test('a longer cycle through sub-folders of one folder is found', async (t) => {
  const r = check(t, {
    ...CLEAN,
    'src/router/stages/forward/forward.ts': "import { e } from '../endpoint/endpoint.js';\nexport const f = e;\n",
    'src/router/stages/endpoint/endpoint.ts': "import { rp } from '../../route-plan.js';\nexport const e = rp;\n",
    'src/router/route-plan.ts': "\nimport { f } from './stages/forward/forward.js';\nexport const rp = f;\n",
  });
  t.equal(r.code, 1);
  t.equal(r.lines.length, 3);
  t.match(r.lines[0], /^src\/router\/route-plan\.ts:2: src\/router\/route-plan\.ts imports src\/router\/stages\/forward\/forward\.ts \(file cycle: /);
  t.ok(
    r.lines.every((l) =>
      l.includes('src/router/route-plan.ts -> src/router/stages/forward/forward.ts -> src/router/stages/endpoint/endpoint.ts -> src/router/route-plan.ts'),
    ),
    'each edge names the whole cycle',
  );
});

t.test('a folder the table does not place is refused; imports in comments and strings are not imports', async (t) => {
  const r = check(t, {
    ...CLEAN,
    'src/gadgets/thing.ts': 'export const x = 1;\n',
    'src/dtab/show.ts': "// import { r } from '../router/router.js';\nexport const s = \"import '../router/router.js'\";\n",
  });
  t.equal(r.code, 1);
  t.same(r.lines, ['src/gadgets/thing.ts:1: src/gadgets has no layer: add it to LAYERS in scripts/check-layers.mjs and to docs/architecture.md']);
});
