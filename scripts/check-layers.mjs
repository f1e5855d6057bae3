#!/usr/bin/env node
// `npm run lint`'s layer check (issue 25, docs/architecture.md "Layers"): the folders of src/ form
// layers, and a folder imports only folders of LOWER layers (never its own layer, never a higher
// one), so the folder graph has no cycle; inside a folder, no two files import each other, even
// through others. Every import counts: `import type`, `export ... from` and `import()` alike,
// since a type shared both ways is the same knot as a value.
//
//   node scripts/check-layers.mjs [--root <dir>]     exit 0: clean; exit 1: each violation printed
//
// Each violation is one line, `file:line: what`, e.g.
//   src/h2/grpc.ts:6: h2 imports router (layer 3 -> layer 4)
// A new folder of src/ needs a row in LAYERS below (and in docs/architecture.md): the check
// refuses a folder it cannot place.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import ts from 'typescript';

/**
 * Low to high. A unit is a folder of src/ (its sub-folders included) or a file directly in src/.
 * Rows with the same number share a layer and may not import each other; a letter orders
 * sub-layers where one folder of a layer builds on another (authz policies name identities; the
 * cli runs the demo and the identity issuer): 3b may import 3a, never the reverse.
 */
export const LAYERS = [
  ['0', ['errors.ts', 'log.ts', 'core']],
  ['1', ['dtab', 'fs', 'k8s']],
  ['2', ['tls', 'namer']],
  ['3a', ['identity', 'h2']],
  ['3b', ['authz']],
  ['4', ['router']],
  ['5', ['metrics', 'server']],
  ['6', ['admin']],
  ['7', ['config']],
  ['8', ['app']],
  ['9a', ['demo', 'identity-issuer']],
  ['9b', ['cli']],
];

const RANK = new Map();
const NAME = new Map();
LAYERS.forEach(([name, units], i) => {
  for (const u of units) {
    RANK.set(u, i);
    NAME.set(u, name);
  }
});

function tsFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** The unit a path under src/ belongs to: its first folder, or the file itself at the top. */
function unitOf(srcRel) {
  const parts = srcRel.split(sep);
  return parts[0];
}

/** Relative imports of one file: the target (a path under root) and the 1-based line. */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const info = ts.preProcessFile(text, true, true);
  const lineStarts = ts.computeLineStarts(text);
  const out = [];
  for (const ref of info.importedFiles) {
    const spec = ref.fileName;
    if (!spec.startsWith('./') && !spec.startsWith('../')) continue;
    let target = normalize(join(dirname(file), spec));
    if (target.endsWith('.js')) target = `${target.slice(0, -3)}.ts`;
    else if (target.endsWith('.mjs')) target = `${target.slice(0, -4)}.mts`;
    const line = ts.computeLineAndCharacterOfPosition(lineStarts, ref.pos).line + 1;
    out.push({ spec, target, line });
  }
  return out;
}

/** Every violation under `root` (a repository with a src/ folder), as printable lines. */
export function checkLayers(root) {
  const src = join(root, 'src');
  const problems = [];
  const files = tsFiles(src);
  const edges = new Map(); // file -> [{target, line}] within its own unit
  const unplaced = new Map();
  for (const file of files) {
    const rel = relative(root, file);
    const from = unitOf(relative(src, file));
    if (!RANK.has(from) && !unplaced.has(from)) unplaced.set(from, rel);
    const local = [];
    for (const imp of importsOf(file)) {
      const targetRel = relative(src, imp.target);
      if (targetRel.startsWith('..')) continue; // outside src/ (a src file importing test code would fail tsc first)
      const to = unitOf(targetRel);
      if (to === from) {
        local.push(imp);
        continue;
      }
      if (!RANK.has(from) || !RANK.has(to)) continue; // reported once below
      const rf = RANK.get(from);
      const rt = RANK.get(to);
      if (rt < rf) continue;
      const why = rt === rf ? 'same layer' : 'upward';
      problems.push(`${rel}:${imp.line}: ${from} imports ${to} (layer ${NAME.get(from)} -> layer ${NAME.get(to)}, ${why}: ${imp.spec})`);
    }
    edges.set(file, local);
  }
  for (const [unit, rel] of unplaced) {
    problems.push(`${rel}:1: src/${unit} has no layer: add it to LAYERS in scripts/check-layers.mjs and to docs/architecture.md`);
  }
  problems.push(...fileCycles(root, edges));
  return problems;
}

/** Cycles among the files of one unit (Tarjan's strongly connected components), one line per edge. */
function fileCycles(root, edges) {
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const components = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const { target: w } of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      const selfLoop = (edges.get(v) ?? []).some((e) => e.target === v);
      if (c.length > 1 || selfLoop) components.push(c);
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);

  const out = [];
  for (const c of components) {
    const members = new Set(c);
    const cycle = shortestCycle(c.sort()[0], members, edges);
    const names = cycle.map((f) => relative(root, f));
    const shown = [...names, names[0]].join(' -> ');
    for (let i = 0; i < cycle.length; i++) {
      const a = cycle[i];
      const b = cycle[(i + 1) % cycle.length];
      const e = edges.get(a).find((x) => x.target === b);
      const knot = c.length > cycle.length ? `; ${c.length} files in the knot` : '';
      out.push(`${relative(root, a)}:${e.line}: ${relative(root, a)} imports ${relative(root, b)} (file cycle: ${shown}${knot})`);
    }
  }
  return out;
}

/** The shortest cycle through `start` inside `members` (breadth first). */
function shortestCycle(start, members, edges) {
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const { target: w } of edges.get(v)) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        let p = prev.get(v);
        while (p !== null && p !== undefined) {
          path.push(p);
          p = prev.get(p);
        }
        return path.reverse();
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

function main(argv) {
  const i = argv.indexOf('--root');
  const root = i >= 0 ? argv[i + 1] : join(dirname(new URL(import.meta.url).pathname), '..');
  if (root === undefined || !statSync(join(root, 'src'), { throwIfNoEntry: false })?.isDirectory()) {
    console.error(`check-layers: no src/ folder under ${root}`);
    return 2;
  }
  const problems = checkLayers(root);
  for (const p of problems) console.log(p);
  if (problems.length > 0) {
    console.log(
      `check-layers: ${problems.length} violation${problems.length === 1 ? '' : 's'} of the layers (docs/architecture.md "Layers"). ` +
        'A folder imports only folders of lower layers, and files do not import each other in a circle: move the shared piece ' +
        'down (a type into the lower folder), or let the lower side define an interface the higher side implements.',
    );
    return 1;
  }
  return 0;
}

if (process.argv[1] !== undefined && normalize(process.argv[1]) === normalize(new URL(import.meta.url).pathname)) {
  process.exitCode = main(process.argv.slice(2));
}
