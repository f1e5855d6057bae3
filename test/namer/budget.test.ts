// Binding work is bounded: nested alternation/union chains (2^N expanded) fail fast with a budget
// error instead of stalling, shared subtrees are evaluated once, and (fast-check) for random dtabs
// the work is linear in the dtab's size and the memoized result equals a naive evaluation.

import fc from 'fast-check';
import t from 'tap';
import { Dtab } from '../../src/dtab/dtab.js';
import type { NameTree } from '../../src/dtab/name-tree.js';
import { Path } from '../../src/dtab/path.js';
import { parsePath } from '../../src/dtab/parse.js';
import { showNameTree, showTree } from '../../src/dtab/show.js';
import { HostmeshError } from '../../src/errors.js';
import type { Lookup } from '../../src/namer/addr.js';
import { boundTree, delegateJson, renderDelegateText, showBound, type DelegateNode } from '../../src/namer/delegate-tree.js';
import { DEFAULT_BINDING_BUDGET, NameInterpreter, type EvalStats } from '../../src/namer/interpreter.js';

/** `/h0 => /h1 OP /h1; ...; /h<n> => leaf`: every level doubles the naive evaluation. */
function chain(levels: number, op: (i: number) => '|' | '&', leaf = '/$/inet/127.0.0.1/8080'): string {
  const lines: string[] = [];
  for (let i = 0; i < levels; i++) lines.push(`/h${i}=>/h${i + 1}${op(i)}/h${i + 1}`);
  lines.push(`/h${levels}=>${leaf}`);
  return lines.join(';');
}

const OPS: [string, (i: number) => '|' | '&'][] = [
  ['alternation', () => '|'],
  ['union', () => '&'],
  ['mixed', (i) => (i % 2 === 0 ? '|' : '&')],
];

function bindNow(interp: NameInterpreter, dtab: Dtab, path: string, budget?: number): Lookup {
  const b = interp.bind(dtab, parsePath(path), budget === undefined ? undefined : { budget });
  const s = b.state.get();
  b.close();
  return s;
}

t.test('nested chains over the budget fail the binding and the explanation with a clear error', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  for (const [name, op] of OPS) {
    for (const levels of [16, 25, 80]) {
      // Neg at the end: every alternative is tried, so binding for traffic expands the chain too.
      const dtab = Dtab.read(chain(levels, op, '~'));
      const s = bindNow(interp, dtab, '/h0');
      t.equal(s.kind, 'failed', `${name} ${levels}: bind fails`);
      if (s.kind === 'failed') {
        t.ok(s.error instanceof HostmeshError && s.error.code === 'BINDING_OVER_BUDGET', `${name} ${levels}: budget code`);
        t.match(s.error.message, new RegExp(`binding /h0 exceeded the binding budget of ${DEFAULT_BINDING_BUDGET}`));
      }
      const stats: EvalStats = { work: 0, size: 0 };
      const tree = interp.explain(dtab, parsePath('/h0'), { stats });
      t.match(tree, { type: 'exception', path: '/h0', message: /binding budget/ }, `${name} ${levels}: explanation is one error node`);
      // Shared subtrees are evaluated once: the budget is hit after a few steps per level, not 2^N.
      t.ok(stats.work <= 7 * (levels + 1), `${name} ${levels}: ${stats.work} steps`);
      t.ok(JSON.stringify(delegateJson(tree)).length < 1000, 'the JSON stays small');
    }
  }
  // An alternation stops at its first child that binds (Finagle): for traffic the chain is one
  // path per level, though an explanation, which shows every branch, is over the budget.
  const bound = Dtab.read(chain(80, () => '|'));
  const stats: EvalStats = { work: 0, size: 0 };
  const b = interp.bind(bound, parsePath('/h0'));
  t.equal(b.state.get().kind, 'ok', 'alternation 80 with a leaf that binds: bound for traffic');
  b.close();
  t.match(interp.explain(bound, parsePath('/h0'), { stats }), { type: 'exception', message: /binding budget/ }, 'and over the budget to explain');
});

t.test('the budget is a per-call limit on the expanded delegation tree', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  // 5 doubling levels: 2^6 - 1 path nodes plus one node per union and per inet leaf (a union
  // evaluates every member for traffic too, so both count the same nodes).
  const dtab = Dtab.read(chain(5, () => '&'));
  const stats: EvalStats = { work: 0, size: 0 };
  const tree = interp.explain(dtab, parsePath('/h0'), { stats });
  t.not(tree.type, 'exception');
  t.ok(stats.size > 64 && stats.size < 200, `expanded size ${stats.size}`);
  t.ok(stats.work < stats.size, `memoized: ${stats.work} steps for ${stats.size} nodes`);
  t.equal(bindNow(interp, dtab, '/h0', stats.size).kind, 'ok', 'exactly the size fits');
  const over = bindNow(interp, dtab, '/h0', stats.size - 1);
  t.equal(over.kind, 'failed', 'one node less does not');
  t.equal(bindNow(interp, dtab, '/h0').kind, 'ok', 'the default budget is separate from a smaller one');
  // The JSON and text renderings of a tree within budget expand shared subtrees as before.
  const json = JSON.stringify(delegateJson(tree));
  t.equal(json.split('"type":"leaf"').length - 1, 32, 'each of the 32 leaves is shown');
  t.equal(showBound(boundTree(tree)).split('/$/inet/127.0.0.1/8080').length - 1, 32, 'the bound union keeps every member');
  t.match(renderDelegateText(tree), /union:/);
});

t.test('dentries tried against each path count toward the budget (a wide dtab costs per path)', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  // Each level appends a label, so paths never repeat (2^N distinct), and 500 dentries share the
  // first label of the deepest levels: each path there is tried against all of them.
  const lines = Array.from({ length: 16 }, (_, i) => `/l${i}=>/l${i + 1}/x|/l${i + 1}/y`);
  for (const k of [11, 12, 13]) for (let j = 0; j < 500; j++) lines.push(`/l${k}/junk${j}=>/nowhere`);
  const dtab = Dtab.read(lines.join(';'));
  const stats: EvalStats = { work: 0, size: 0 };
  const tree = interp.explain(dtab, parsePath('/l0'), { stats });
  t.match(tree, { type: 'exception', message: /binding \/l0 exceeded the binding budget: more than 80000 steps/ });
  t.ok(stats.work <= DEFAULT_BINDING_BUDGET * 8 + 1600, `${stats.work} steps`);
  t.ok(stats.size <= DEFAULT_BINDING_BUDGET, `${stats.size} nodes`);
});

t.test('long paths are charged by length: dentries that grow the path by 100 labels a step', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  const labels = (c: string): string => Array.from({ length: 100 }, (_, j) => `${c}${j}`).join('/');
  // 16 KB: 20 doubling steps, each appending 100 labels (paths of up to 2,000 labels).
  const dtab = Dtab.read(Array.from({ length: 20 }, (_, i) => `/a${i}=>/a${i + 1}/${labels('p')}|/a${i + 1}/${labels('q')}`).join(';'));
  for (const explain of [false, true]) {
    const stats: EvalStats = { work: 0, size: 0 };
    const node = interp.explain(dtab, parsePath('/a0'), explain ? { stats } : { stats, budget: DEFAULT_BINDING_BUDGET });
    t.match(node, { type: 'exception', message: /exceeded the binding budget/ });
    t.ok(stats.work <= DEFAULT_BINDING_BUDGET * 8 + 2100, `${stats.work} steps`);
  }
  const s = bindNow(interp, dtab, '/a0');
  t.match(s.kind === 'failed' ? s.error.message : s.kind, /binding \/a0 exceeded the binding budget: more than 80000 steps/);
});

t.test('explanations are bounded in text too: long labels cannot make a small tree huge JSON', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  const long = 'x'.repeat(3000);
  // 8 doubling levels: 1,022 nodes (within the node budget), each path 3,000+ characters.
  const lines = Array.from({ length: 8 }, (_, i) => `/h${i}${long}=>/h${i + 1}${long}|/h${i + 1}${long}`);
  lines.push(`/h8${long}=>/$/inet/1`);
  const dtab = Dtab.read(lines.join(';'));
  const tree = interp.explain(dtab, new Path([`h0${long}`]));
  t.match(tree, { type: 'exception', message: /exceeded the binding budget: its explanation would pass 2560000 characters/ });
  t.equal(bindNow(interp, dtab, `/h0${long}`).kind, 'ok', 'binding for traffic prints nothing and is not charged');
  // Within the text budget, the JSON stays near budget x 256 characters.
  const five = Dtab.read([...lines.slice(3), `/h8${long}=>/$/inet/1`].join(';'));
  const ok = interp.explain(five, new Path([`h3${long}`]));
  t.equal(ok.type, 'delegate');
  t.ok(JSON.stringify(delegateJson(ok)).length < DEFAULT_BINDING_BUDGET * 256 * 1.5);
});

t.test('loops are still loops: a path met again on its own chain, or the depth limit', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  for (const d of ['/a=>/b;/b=>/a', '/a=>/a|/a', '/a=>~|/b;/b=>/c|/a;/c=>~', '/a=>/b&/b;/b=>/a']) {
    const s = bindNow(interp, Dtab.read(d), '/a');
    t.equal(s.kind, 'failed', d);
    if (s.kind === 'failed') t.match(s.error.message, /delegation loop: binding .* exceeded 100 steps/, d);
  }
  // A loop in one member of a union fails that member only; the union binds to the others.
  const member = bindNow(interp, Dtab.read('/a=>/b|/$/inet/1;/b=>/c&/a;/c=>/$/inet/2'), '/a');
  t.equal(member.kind === 'ok' ? showBound(member.tree) : member.kind, '/$/inet/2');
  // An alternative after one that binds is never evaluated, loop or not.
  const later = bindNow(interp, Dtab.read('/a=>/$/inet/1|/b;/b=>/b/x'), '/a');
  t.equal(later.kind === 'ok' ? showBound(later.tree) : later.kind, '/$/inet/1');
  // A growing path never repeats, so only the depth limit catches it.
  const grow = bindNow(interp, Dtab.read('/a=>/a/x'), '/a');
  t.match(grow.kind === 'failed' ? grow.error.message : '', /delegation loop/);
  // A shared subtree reached deeper than where it was first evaluated can cross the depth limit.
  const steps = Array.from({ length: 95 }, (_, i) => `/s${i}=>/s${i + 1}`).join(';');
  const deep = Dtab.read(`${steps};/s95=>/t0;/t0=>/t1;/t1=>/t2;/t2=>/t3;/t3=>/t4;/t4=>/t5;/t5=>~;/r=>/t0|/s0`);
  // /r: /t0 is evaluated first (shallow, neg, so /s0 is tried), then reached again 96 steps down
  // under /s0: too deep.
  const r = bindNow(interp, deep, '/r');
  t.equal(r.kind, 'failed');
  t.match(r.kind === 'failed' ? r.error.message : '', /delegation loop: binding \/t\d exceeded 100 steps/);
});

t.test('deep nesting within the limits does not overflow the stack anywhere', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  // Each step's destination nested as deep as the parser allows: 32 node levels per step.
  const nest = (inner: string, n: number): string => (n === 0 ? inner : `(${nest(inner, n - 1)} | ~)`);
  const steps = (n: number): string => Array.from({ length: n }, (_, i) => `/n${i}=>${nest(`/n${i + 1}`, 31)}`).join(';') + `;/n${n}=>/$/inet/1`;
  // 31 steps nest about 990 levels: within the limit, and every walk over the tree copes.
  const tree = interp.explain(Dtab.read(steps(31)), parsePath('/n0'));
  t.equal(tree.type, 'delegate');
  t.doesNotThrow(() => JSON.stringify(delegateJson(tree)), 'JSON');
  t.doesNotThrow(() => renderDelegateText(tree), 'text');
  t.equal(showBound(boundTree(tree)), '/$/inet/1');
  t.equal(bindNow(interp, Dtab.read(steps(31)), '/n0').kind, 'ok');
  // 99 steps nest over 3,000 levels: refused as over budget, even with a large budget.
  for (const budget of [DEFAULT_BINDING_BUDGET, 1_000_000]) {
    const s = bindNow(interp, Dtab.read(steps(99)), '/n0', budget);
    t.equal(s.kind, 'failed');
    t.match(s.kind === 'failed' ? s.error.message : '', /binding budget: the delegation tree nests deeper than 1000 levels/);
  }
});

// ---- properties ----------------------------------------------------------------------------

const LABELS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5'];
const weight = fc.integer({ min: 1, max: 4 }).map((n) => n / 2);
const leafPath = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...LABELS).map((l) => new Path([l])) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }).map((p) => new Path(['$', 'inet', '127.0.0.1', String(p)])) },
);
const tree: fc.Arbitrary<NameTree<Path>> = fc.letrec<{ tree: NameTree<Path> }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafPath.map((p) => ({ kind: 'leaf', value: p }) as const),
    fc.constant({ kind: 'neg' } as const),
    fc.constant({ kind: 'fail' } as const),
    fc.constant({ kind: 'empty' } as const),
    fc.array(tie('tree'), { minLength: 2, maxLength: 3 }).map((trees) => ({ kind: 'alt', trees }) as const),
    fc.array(fc.record({ weight, tree: tie('tree') }), { minLength: 2, maxLength: 3 }).map((members) => ({ kind: 'union', members }) as const),
  ),
})).tree;
const dtabText = fc.array(fc.tuple(fc.constantFrom(...LABELS), tree), { maxLength: 8 }).map((ds) => ds.map(([p, d]) => `/${p}=>${showNameTree(d)}`).join(';'));

/** Dtab size in nodes: one per dentry plus one per node of its destination. */
function dtabSize(d: Dtab): number {
  const count = (tr: NameTree<Path>): number =>
    tr.kind === 'alt' ? 1 + tr.trees.reduce((n, x) => n + count(x), 0) : tr.kind === 'union' ? 1 + tr.members.reduce((n, m) => n + count(m.tree), 0) : 1;
  return d.dentries.reduce((n, e) => n + 1 + count(e.dst), 0);
}

/**
 * The reference: Finagle's Namer.bind evaluated naively (every path afresh, every time) with the
 * 100-step depth limit, shown as the bound tree. An alternation is its first child that does not
 * bind to neg (a loop there fails it); a union keeps the members that bound, failing only if none
 * did. One rule is hostmesh's: a path met again on its own chain is a loop at once (Finagle runs
 * it to the depth limit, which ends the same way unless a union lies on the cycle). Only for
 * small dtabs: it is exponential.
 */
function naive(dtab: Dtab, path: Path): string {
  type B = NameTree<string>;
  const LOOP = 'loop' as const;
  type R = B | typeof LOOP;
  const NEGB: B = { kind: 'neg' };
  const ofTree = (tr: NameTree<Path>, depth: number, chain: readonly string[]): R => {
    switch (tr.kind) {
      case 'leaf':
        return ofPath(tr.value, depth, chain);
      case 'alt':
        for (const x of tr.trees) {
          const r = ofTree(x, depth, chain);
          if (r === LOOP || r.kind !== 'neg') return r;
        }
        return NEGB;
      case 'union': {
        const oks: { weight: number; tree: B }[] = [];
        for (const m of tr.members) {
          const r = ofTree(m.tree, depth, chain);
          if (r !== LOOP) oks.push({ weight: m.weight, tree: r });
        }
        if (oks.length === 0) return LOOP;
        if (oks.length === 1) return (oks[0] as { tree: B }).tree;
        const kept = oks.filter((m) => m.tree.kind !== 'neg' && m.tree.kind !== 'fail');
        if (kept.length === 0) return NEGB;
        if (kept.length === 1) return (kept[0] as { tree: B }).tree;
        return { kind: 'union', members: kept };
      }
      default:
        return tr;
    }
  };
  const ofPath = (p: Path, depth: number, chain: readonly string[]): R => {
    if (depth >= 100 || chain.includes(p.show())) return LOOP;
    const next = dtab.lookup(p);
    if (next.kind === 'neg') return p.elems[0] === '$' ? { kind: 'leaf', value: p.show() } : NEGB;
    return ofTree(next, depth + 1, [...chain, p.show()]);
  };
  const b = ofPath(path, 0, []);
  if (b === LOOP) return LOOP;
  // The same printer as the bound tree's: the property is about binding, not printing.
  return showTree(b, (v) => v);
}

function memoized(interp: NameInterpreter, dtab: Dtab, path: Path): string {
  const b = interp.bind(dtab, path, { budget: 1e9 });
  const s = b.state.get();
  b.close();
  if (s.kind === 'ok') return showBound(s.tree);
  if (s.kind === 'failed' && s.error instanceof HostmeshError && s.error.code === 'DELEGATION_LOOP') return 'loop';
  return `${s.kind}: ${s.kind === 'failed' ? s.error.message : ''}`;
}

t.test('property: bind returns a result or a budget/loop error, with work linear in the dtab size', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  fc.assert(
    fc.property(dtabText, fc.constantFrom(...LABELS), (text, start) => {
      const dtab = Dtab.read(text);
      const path = new Path([start]);
      const stats: EvalStats = { work: 0, size: 0 };
      let node: DelegateNode | undefined;
      try {
        node = interp.explain(dtab, path, { stats });
      } catch (err) {
        t.fail(`explain threw ${String(err)} for ${text}`);
        return false;
      }
      if (node.type === 'exception' && !/budget|loop|unknown built-in/.test(node.message)) t.fail(`unexpected error ${node.message}`);
      const s = bindNow(interp, dtab, path.show());
      if (s.kind === 'failed') {
        const code = s.error instanceof HostmeshError ? s.error.code : 'none';
        if (!['BINDING_OVER_BUDGET', 'DELEGATION_LOOP', 'BINDING_FAILED'].includes(code)) t.fail(`unexpected failure ${code}: ${s.error.message}`);
      }
      // Each path is evaluated once; each evaluation walks the destinations of the dentries it
      // matches: a handful of steps per dtab node. A loop on a single chain (no alternation yet,
      // so nothing is memoized) runs to the depth limit: at most 101 steps of up to 3 + its dentries
      // (a self-loop `/a1=>/a1` costs 3 per step: 303 in all).
      const limit = 4 * (dtabSize(dtab) + 1) + 4 * LABELS.length + 101 * (3 + dtab.dentries.length);
      return stats.work <= limit;
    }),
    { numRuns: 400 },
  );
  t.pass('held for 400 random dtabs');
});

t.test('property: the memoized evaluation binds exactly as the naive one (small dtabs)', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  fc.assert(
    fc.property(
      dtabText.filter((d) => d.length < 160),
      fc.constantFrom(...LABELS),
      (text, start) => {
        const dtab = Dtab.read(text);
        const path = new Path([start]);
        const want = naive(dtab, path);
        const got = memoized(interp, dtab, path);
        if (got !== want) t.fail(`${text} @ ${path.show()}: got ${got}, naive ${want}`);
        return got === want;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('held for 300 random dtabs');
});

t.test('property: random nested alt/union chains are rejected after a linear number of steps', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  fc.assert(
    fc.property(fc.array(fc.constantFrom<'|' | '&'>('|', '&'), { minLength: 1, maxLength: 60 }), fc.integer({ min: 2, max: 3 }), (ops, width) => {
      const lines = ops.map((op, i) => `/h${i}=>` + Array.from({ length: width }, () => `/h${i + 1}`).join(op));
      lines.push(`/h${ops.length}=>/$/inet/1`);
      const dtab = Dtab.read(lines.join(';'));
      const stats: EvalStats = { work: 0, size: 0 };
      const node = interp.explain(dtab, parsePath('/h0'), { stats });
      const expanded = (width ** (ops.length + 1) - 1) / (width - 1);
      if (expanded > DEFAULT_BINDING_BUDGET) t.match(node, { type: 'exception', message: /budget/ });
      return stats.work <= (2 * width + 4) * (ops.length + 1) + 8 && stats.size <= 2 * DEFAULT_BINDING_BUDGET + 10;
    }),
    { numRuns: 200 },
  );
  t.pass('held');
});
