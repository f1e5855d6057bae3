// Binds a logical path through a dtab and the configured namers (Finagle's name interpreter):
// records every step as a delegation tree and derives the simplified bound tree, live.

import type { Dtab, DtabMatch } from '../dtab/dtab.js';
import type { Dentry } from '../dtab/dentry.js';
import type { NameTree } from '../dtab/name-tree.js';
import { Path } from '../dtab/path.js';
import { showNameTree } from '../dtab/show.js';
import { HostmeshError } from '../errors.js';
import type { BoundName, Lookup, Namer } from './addr.js';
import { InetAddrs, resolveBuiltin, type InetAddrsOptions } from './builtins.js';
import { addrJson, bindOutcome, decidesAlternation, TreeText, type DelegateNode, type DentryJson } from './delegate-tree.js';
import { settled, Var } from './var.js';

export interface Binding {
  readonly state: Var<Lookup>;
  close(): void;
}

export interface InterpreterOptions {
  readonly namers: readonly Namer[];
  /**
   * Delegation depth before binding stops with a loop error (Finagle's and Linkerd 1's 100): a path
   * reached after this many rewrites does not bind, so a chain of 99 dentries to /$/inet binds and
   * one of 100 does not, as in Finagle (each step's result is bound one level deeper).
   */
  readonly maxDepth?: number;
  /** Most nodes one delegation tree may have (router `bindingBudget`); see DEFAULT_BINDING_BUDGET. */
  readonly budget?: number;
  /** Bounds of the /$/inet address map (config `inet`), and its clock. */
  readonly inet?: InetAddrsOptions;
}

/**
 * Most nodes of one delegation tree, expanded as /delegator.json shows it (every step of every
 * branch counts, a shared subtree each time it appears). Real dtabs bind in tens of nodes; a
 * chain of doubling alternations or unions reaches 2^N and is refused once past this.
 */
export const DEFAULT_BINDING_BUDGET = 10_000;

/**
 * How deeply delegation nodes may nest (steps times tree nesting). The depth limit (100 steps)
 * and the parser's nesting limit (32) already bound it; this keeps dtabs built in code, and every
 * recursive walk over the tree (JSON, text, bound tree), well inside the stack.
 */
const MAX_NODE_NESTING = 1000;

/**
 * Evaluation steps allowed per node of budget. Steps include the dentries tried against each
 * path (a dtab with hundreds of dentries sharing a first label costs that many per path) and the
 * labels of each path evaluated, so this bounds the CPU of one evaluation even when the tree it
 * builds is small.
 */
const STEPS_PER_NODE = 8;

/**
 * Characters of explanation text (paths, dentries, messages) allowed per node of budget. Only
 * explanations are charged: they are what is printed, and long labels (a POST to /delegator.json
 * carries up to 64 KB) would otherwise make a tree within the node budget tens of MB of JSON.
 */
const TEXT_PER_NODE = 256;

/** Per-evaluation options: a budget other than the interpreter's, and where to report the cost. */
export interface EvalOptions {
  readonly budget?: number;
  /** Filled in when the evaluation ends (tests, benchmarks). */
  readonly stats?: EvalStats;
}

export interface EvalStats {
  /** Evaluation steps taken: paths and tree nodes evaluated, shared subtrees reused. */
  work: number;
  /** Nodes of the expanded delegation tree (counted up to where the budget stopped it). */
  size: number;
}

// Signals, not Errors: evaluation turns them into a HostmeshError once, so a refused hostile dtab
// does not pay for capturing stack traces on the way.
class LoopError {
  constructor(readonly message: string) {}
}

/** Thrown inside evaluation when the tree outgrows the budget; #evalTop words the message. */
class BudgetError {
  constructor(readonly message: string) {}
}

interface EvalContext {
  readonly dtab: Dtab;
  /** Every namer lookup Var the evaluation read, so a live binding can watch them. */
  readonly used: Set<Var<Lookup>>;
  /**
   * True for explanations: every branch is evaluated and shown, and a loop in one branch of an
   * alternation or union is shown there (Linkerd 1's delegator). False for traffic: an alternation
   * stops at its first child that decides (Finagle's Namer.bind), so later branches are neither
   * evaluated nor watched.
   */
  readonly tolerant: boolean;
  readonly budget: number;
  readonly stats: EvalStats | undefined;
  work: number;
  size: number;
  /** Characters of explanation text so far (explanations only). */
  text: number;
  /**
   * Paths already evaluated in this evaluation (a Memo), or being evaluated (ACTIVE: on the
   * current delegation chain, so reaching one again would recurse forever). The result of a path
   * depends only on the path (the dtab and the namers' states are fixed while it runs), so a path
   * reached again is the same subtree: reused in one step instead of re-expanded (2^N becomes N
   * for doubling chains). Created at the first branch (an alternation or union): until then the
   * evaluation is one chain, which can meet a path again only as a loop, and the depth limit
   * catches those; the common single-chain binding pays for no map.
   */
  memo: Map<string, Memo | typeof ACTIVE> | undefined;
  /** The deepest step reached so far under the path being evaluated. */
  deepest: number;
  /** Keys of the paths marked ACTIVE in `memo`, innermost last (a caught loop unmarks its branch's). */
  readonly active: string[];
  /**
   * The paths being evaluated before the memo existed (the single chain down to the first branch).
   * They are marked ACTIVE when it is made: a union member that leads back to one is a loop at
   * once, as one that leads back to a path below the branch is.
   */
  readonly chain: Path[];
}

const ACTIVE = 0;

interface Memo {
  readonly node: DelegateNode;
  /** Steps from this path to the deepest step under it (a reuse deeper down may pass maxDepth). */
  readonly height: number;
  /** Nodes of its expanded subtree. */
  readonly size: number;
  /** Characters of its explanation (0 when binding for traffic). */
  readonly text: number;
}

/** The characters a node adds to an explanation: its path, its dentry and any message. */
function textOf(node: DelegateNode): number {
  const dentry = node.dentry === null ? 0 : node.dentry.prefix.length + node.dentry.dst.length;
  const path = String(node.path).length;
  return path + dentry + (node.type === 'exception' ? node.message.length : 0);
}

/** A map key for a path: labels are latin1, so U+0100 cannot occur in one. */
function memoKey(path: Path): string {
  return path.elems.join('\u0100');
}

const HASH = '#';

/** A namer lookup shared by the live bindings that read it; dropped when the last one lets go. */
export interface SharedLookup {
  /** Every key (mount + rest) that gave this Var: namers may share one for several spellings. */
  readonly keys: string[];
  readonly v: Var<Lookup>;
  refs: number;
}

export class NameInterpreter {
  readonly #namers: readonly { namer: Namer; prefix: Path }[];
  readonly #maxDepth: number;
  readonly #budget: number;
  readonly #inet: InetAddrs;
  readonly #lookups = new Map<string, SharedLookup>();
  readonly #lookupsByVar = new Map<Var<Lookup>, SharedLookup>();
  /** Live bindings by dtab (its text), then path (its text, and the budget when not the interpreter's). */
  readonly #bindings = new Map<string, Map<string, LiveBinding>>();
  #bindingCount = 0;

  constructor(options: InterpreterOptions) {
    this.#namers = options.namers.map((namer) => ({ namer, prefix: namer.prefix }));
    this.#maxDepth = options.maxDepth ?? 100;
    this.#budget = options.budget ?? DEFAULT_BINDING_BUDGET;
    this.#inet = new InetAddrs(options.inet);
  }

  /** Drops /$/inet addresses no dtab has named for their idle TTL (the idle sweeps call it). */
  evictIdle(): number {
    return this.#inet.evictIdle();
  }

  /** The /$/inet address map's size and evictions, reported as the namer `inet`. */
  inetStats(): { entries: number; evictions: number } {
    return { entries: this.#inet.size, evictions: this.#inet.evictions };
  }

  /** Live binding of `path` through `dtab` then the namers; shared by identical (dtab, path). */
  bind(dtab: Dtab, path: Path, options: { budget?: number } = {}): Binding {
    const budget = options.budget ?? this.#budget;
    // Keyed by the texts the Dtab and the Path already keep (no key string per binding). A router
    // with its own bindingBudget may bind the same (dtab, path) to a different result.
    const dtabKey = dtab.show();
    const pathKey = budget === this.#budget ? path.show() : `${path.show()}\n${budget}`;
    let live = this.#bindings.get(dtabKey)?.get(pathKey);
    if (live === undefined) {
      live = new LiveBinding(this, dtab, path, budget, pathKey);
      live.evaluate();
      let byPath = this.#bindings.get(dtabKey);
      if (byPath === undefined) {
        byPath = new Map();
        this.#bindings.set(dtabKey, byPath);
      }
      byPath.set(pathKey, live);
      this.#bindingCount++;
    }
    live.refs++;
    return new BindingHandle(live);
  }

  /** The last handle of `live` closed: it stops watching its lookups and is forgotten. */
  unbind(live: LiveBinding): void {
    live.stop();
    const dtabKey = live.dtab.show();
    const byPath = this.#bindings.get(dtabKey);
    if (byPath === undefined || byPath.get(live.key) !== live) return;
    byPath.delete(live.key);
    this.#bindingCount--;
    if (byPath.size === 0) this.#bindings.delete(dtabKey);
  }

  /** One evaluation for a live binding: its lookup, and the namer lookups it read. */
  evaluateFor(dtab: Dtab, path: Path, budget: number): { lookup: Lookup; used: Set<Var<Lookup>> } {
    const ctx = this.#context(dtab, false, { budget });
    return { lookup: this.#lookupOf(ctx, path), used: ctx.used };
  }

  /** A live binding started watching `v`: the lookup it names is kept while one does. */
  holdLookup(v: Var<Lookup>): SharedLookup | undefined {
    const shared = this.#lookupsByVar.get(v);
    if (shared !== undefined) shared.refs++;
    return shared;
  }

  /** A live binding stopped watching a lookup: dropped when none does. */
  releaseLookup(shared: SharedLookup | undefined): void {
    if (shared !== undefined && --shared.refs === 0) this.#dropLookup(shared);
  }

  /** One evaluation of the delegation tree, pending namers shown as pending (no waiting). */
  explain(dtab: Dtab, path: Path, options: EvalOptions = {}): DelegateNode {
    const ctx = this.#context(dtab, true, options);
    try {
      return this.#evalTop(ctx, path);
    } finally {
      // Lookups only this explanation read are not kept (no live binding watches them).
      for (const v of ctx.used) {
        const shared = this.#lookupsByVar.get(v);
        if (shared !== undefined && shared.refs === 0) this.#dropLookup(shared);
      }
    }
  }

  /** Namer lookups held by live bindings (hostmesh_interpreter_lookups). */
  get lookupCount(): number {
    return this.#lookups.size;
  }

  /** Live bindings, shared by identical (dtab, path) (hostmesh_interpreter_bindings). */
  get bindingCount(): number {
    return this.#bindingCount;
  }

  /** The delegation tree, waiting up to `timeoutMs` for namers that have not answered yet. */
  async delegate(dtab: Dtab, path: Path, options: { timeoutMs?: number; budget?: number; stats?: EvalStats } = {}): Promise<DelegateNode> {
    const budget = options.budget ?? this.#budget;
    const binding = this.bind(dtab, path, { budget });
    try {
      // Only a pending binding is waited on: subscribing to a settled one would toggle its observation.
      if (binding.state.get().kind === 'pending') await settled(binding.state, options.timeoutMs ?? 5000);
      return this.explain(dtab, path, options.stats === undefined ? { budget } : { budget, stats: options.stats });
    } finally {
      binding.close();
    }
  }

  #context(dtab: Dtab, tolerant: boolean, options: EvalOptions): EvalContext {
    return {
      dtab,
      used: new Set(),
      tolerant,
      budget: options.budget ?? this.#budget,
      stats: options.stats,
      work: 0,
      size: 0,
      text: 0,
      memo: undefined,
      deepest: 0,
      active: [],
      chain: [],
    };
  }

  #lookupOf(ctx: EvalContext, path: Path): Lookup {
    let tree: DelegateNode;
    try {
      tree = this.#evalTop(ctx, path);
    } catch (err) {
      if (err instanceof LoopError) {
        return { kind: 'failed', error: new HostmeshError('DELEGATION_LOOP', err.message) };
      }
      if (err instanceof BudgetError) {
        return { kind: 'failed', error: new HostmeshError('BINDING_OVER_BUDGET', err.message) };
      }
      throw err;
    }
    const outcome = bindOutcome(tree);
    if (outcome.kind === 'failed') return { kind: 'failed', error: new HostmeshError(outcome.loop ? 'DELEGATION_LOOP' : 'BINDING_FAILED', outcome.message) };
    return outcome;
  }

  #evalTop(ctx: EvalContext, path: Path): DelegateNode {
    try {
      return this.#evalPath(ctx, path, null, 0, 0);
    } catch (err) {
      let e = err;
      if (err instanceof BudgetError) {
        e = new BudgetError(
          err.message === 'nesting'
            ? `binding ${path.show()} exceeded the binding budget: the delegation tree nests deeper than ${MAX_NODE_NESTING} levels`
            : err.message === 'text'
              ? `binding ${path.show()} exceeded the binding budget: its explanation would pass ${ctx.budget * TEXT_PER_NODE} characters (router bindingBudget ${ctx.budget})`
              : err.message === 'work'
                ? `binding ${path.show()} exceeded the binding budget: more than ${ctx.budget * STEPS_PER_NODE} steps (paths and dentries tried, labels copied; router bindingBudget ${ctx.budget})`
                : `binding ${path.show()} exceeded the binding budget of ${ctx.budget} delegation nodes (router bindingBudget): the dtab expands too many alternatives`,
        );
      }
      if (e instanceof LoopError && ctx.tolerant) return { type: 'exception', path: path.show(), dentry: null, message: e.message, reason: 'loop' };
      if (e instanceof BudgetError && ctx.tolerant) return { type: 'exception', path: path.show(), dentry: null, message: e.message };
      throw e;
    } finally {
      if (ctx.stats !== undefined) {
        ctx.stats.work = ctx.work;
        ctx.stats.size = ctx.size;
      }
    }
  }

  /** The evaluation reached its first branch: from here on paths are memoized (see EvalContext.memo). */
  #branching(ctx: EvalContext): void {
    if (ctx.memo !== undefined) return;
    ctx.memo = new Map();
    for (const p of ctx.chain) {
      const key = memoKey(p);
      ctx.memo.set(key, ACTIVE);
      ctx.active.push(key);
    }
  }

  /** Counts `work` steps and `size` nodes against the budget. */
  #spend(ctx: EvalContext, work: number, size: number): void {
    ctx.work += work;
    ctx.size += size;
    if (ctx.size > ctx.budget) throw new BudgetError('size');
    if (ctx.work > ctx.budget * STEPS_PER_NODE) throw new BudgetError('work');
  }

  /** Counts explanation text against the budget (explanations only). */
  #spendText(ctx: EvalContext, chars: number): void {
    ctx.text += chars;
    if (ctx.text > ctx.budget * TEXT_PER_NODE) throw new BudgetError('text');
  }

  #loop(path: Path, why = ''): LoopError {
    return new LoopError(`delegation loop: binding ${path.show()} exceeded ${this.#maxDepth} steps${why}`);
  }

  /** Binds one path reached through `dentry` (null at the root), at most once per evaluation. */
  #evalPath(ctx: EvalContext, path: Path, dentry: DentryJson | null, depth: number, nest: number): DelegateNode {
    if (depth >= this.#maxDepth) throw this.#loop(path);
    if (nest > MAX_NODE_NESTING) throw new BudgetError('nesting');
    // Evaluating a path copies and keys all of its labels, and dentries can grow paths by many
    // labels a step (20 steps of 100 labels: 2,000-label paths, 0.7 s per bind before this
    // charge), so a path costs one step more per label.
    this.#spend(ctx, path.elems.length, 0);
    const memo = ctx.memo;
    const key = memo === undefined ? '' : memoKey(path);
    if (memo !== undefined) {
      const seen = memo.get(key);
      if (seen === ACTIVE) throw this.#loop(path, ' (it leads back to itself)');
      if (seen !== undefined) {
        // Evaluated again here, it would go `height` steps further down: past the limit, a loop.
        if (depth + seen.height >= this.#maxDepth) throw this.#loop(path);
        this.#spend(ctx, 1, seen.size);
        if (ctx.tolerant) this.#spendText(ctx, seen.text);
        if (depth + seen.height > ctx.deepest) ctx.deepest = depth + seen.height;
        return seen.node.dentry === dentry ? seen.node : { ...seen.node, dentry };
      }
      memo.set(key, ACTIVE);
      ctx.active.push(key);
    } else {
      ctx.chain.push(path);
    }
    const outerDeepest = ctx.deepest;
    const sizeBefore = ctx.size;
    const textBefore = ctx.text;
    ctx.deepest = depth;
    this.#spend(ctx, 1, 1);
    const node = this.#evalPathOnce(ctx, path, dentry, depth, nest);
    if (memo === undefined) ctx.chain.pop();
    if (ctx.tolerant) this.#spendText(ctx, textOf(node));
    if (memo !== undefined) {
      ctx.active.pop();
      memo.set(key, { node, height: ctx.deepest - depth, size: ctx.size - sizeBefore, text: ctx.text - textBefore });
    }
    if (outerDeepest > ctx.deepest) ctx.deepest = outerDeepest;
    return node;
  }

  #evalPathOnce(ctx: EvalContext, path: Path, dentry: DentryJson | null, depth: number, nest: number): DelegateNode {
    this.#spend(ctx, ctx.dtab.candidates(path).length, 0);
    // Dtab's own matching rule (wildcards, the later dentry first): one rule, not a copy of it.
    const matches = ctx.dtab.matching(path);
    // One dentry rewriting to exactly neg is no match for a namer's or a built-in name (Finagle's and
    // Linkerd 1's lookups fall through to the namers when the dtab gives Neg): `/#/io.l5d.k8s=>~`
    // does not hide the namer. Other paths would find nothing there; their `~` is shown as Linkerd 1's
    // delegator shows it.
    const first = path.elems[0];
    const named = first === HASH || first === '$';
    if (matches.length === 0 || (named && matches.length === 1 && (matches[0] as DtabMatch).dst.kind === 'neg')) {
      // The dtab first, then the namers, then the built-in /$ names (Finagle's DefaultInterpreter
      // and Linkerd 1's interpreter): a dentry may rewrite /$/inet/... like any other path.
      if (first === HASH) return this.#evalNamer(ctx, path, dentry, depth, nest);
      if (first === '$') return this.#evalBuiltin(ctx, path, dentry, depth, nest);
      return { type: 'neg', path: ctx.tolerant ? path.show() : path, dentry };
    }
    // Several matching dentries form an alternation, the LAST dentry first.
    if (matches.length > 1) this.#branching(ctx);
    const children: DelegateNode[] = [];
    for (const m of matches) {
      const child = this.#branch(ctx, m.dst, dentryJson(m.dentry), depth + 1, nest + 1, matches.length > 1 && ctx.tolerant);
      children.push(child);
      if (!ctx.tolerant && decidesAlternation(child)) break; // see #alternatives
    }
    // Intermediate steps keep the Path itself: binding for traffic never prints them.
    if (children.length === 1) return { type: 'delegate', path, dentry, delegate: children[0] as DelegateNode };
    return { type: 'alt', path, dentry, alt: children };
  }

  /** Evaluates a dentry's destination tree (with the rest of the path already appended to leaves). */
  #evalTree(ctx: EvalContext, tree: NameTree<Path>, dentry: DentryJson, depth: number, nest: number): DelegateNode {
    if (tree.kind === 'leaf') return this.#evalPath(ctx, tree.value, dentry, depth, nest);
    if (nest > MAX_NODE_NESTING) throw new BudgetError('nesting');
    this.#spend(ctx, 1, 1);
    if (tree.kind === 'alt' || tree.kind === 'union') this.#branching(ctx);
    // Binding for traffic never prints the tree: it is shown only if someone reads it.
    let shown: string | TreeText;
    if (ctx.tolerant) {
      shown = showNameTree(tree);
      this.#spendText(ctx, shown.length + dentry.prefix.length + dentry.dst.length);
    } else {
      shown = new TreeText(tree);
    }
    switch (tree.kind) {
      case 'neg':
        return { type: 'neg', path: shown, dentry };
      case 'fail':
        return { type: 'fail', path: shown, dentry };
      case 'empty':
        return { type: 'empty', path: shown, dentry };
      case 'alt':
        return {
          type: 'alt',
          path: shown,
          dentry,
          dst: true,
          alt: this.#alternatives(ctx, tree.trees, dentry, depth, nest + 1),
        };
      case 'union':
        return {
          type: 'union',
          path: shown,
          dentry,
          dst: true,
          // A loop in one member fails that member only (Finagle binds each member on its own).
          union: tree.members.map((m) => ({
            weight: m.weight,
            tree: this.#branch(ctx, m.tree, dentry, depth, nest + 1, true),
          })),
        };
    }
  }

  /**
   * An alternation's children, evaluated in order. For traffic the evaluation stops at the first
   * child that decides the alternation (binds to something other than neg, fails, or waits for a
   * namer): the rest are never read, so a pending namer or a loop there changes nothing.
   */
  #alternatives(ctx: EvalContext, trees: readonly NameTree<Path>[], dentry: DentryJson, depth: number, nest: number): DelegateNode[] {
    const out: DelegateNode[] = [];
    for (const t of trees) {
      const node = this.#branch(ctx, t, dentry, depth, nest, ctx.tolerant);
      out.push(node);
      if (!ctx.tolerant && decidesAlternation(node)) break;
    }
    return out;
  }

  /**
   * One branch of an alternation or union. A delegation loop inside it becomes an exception node
   * for that branch when `guarded` (a union member, or any branch of an explanation, as Linkerd 1's
   * delegator shows it); the paths the aborted branch left marked as being evaluated are unmarked,
   * so another branch reaching them evaluates them afresh. Unguarded, the loop fails the binding.
   */
  #branch(ctx: EvalContext, tree: NameTree<Path>, dentry: DentryJson, depth: number, nest: number, guarded: boolean): DelegateNode {
    // No closures here: every frame counts on a path nested a thousand levels deep.
    if (!guarded) return this.#evalTree(ctx, tree, dentry, depth, nest);
    const active = ctx.active.length;
    const deepest = ctx.deepest;
    try {
      return this.#evalTree(ctx, tree, dentry, depth, nest);
    } catch (err) {
      if (!(err instanceof LoopError)) throw err;
      for (const key of ctx.active.splice(active)) ctx.memo?.delete(key);
      ctx.deepest = deepest;
      const path = ctx.tolerant ? showNameTree(tree) : new TreeText(tree);
      return { type: 'exception', path, dentry, message: err.message, reason: 'loop' };
    }
  }

  #evalBuiltin(ctx: EvalContext, path: Path, dentry: DentryJson | null, depth: number, nest: number): DelegateNode {
    const shown = ctx.tolerant ? path.show() : path;
    const result = resolveBuiltin(path, this.#inet);
    switch (result.kind) {
      case 'bound':
        return leafNode(shown, dentry, result.name);
      case 'rewrite':
        return {
          type: 'delegate',
          path: shown,
          dentry,
          delegate: this.#evalPath(ctx, result.path, { prefix: `/$/${result.via}`, dst: result.path.show() }, depth + 1, nest + 1),
        };
      case 'error':
        return { type: 'exception', path: shown, dentry, message: result.message };
      default:
        return { type: result.kind, path: shown, dentry };
    }
  }

  #evalNamer(ctx: EvalContext, path: Path, dentry: DentryJson | null, depth: number, nest: number): DelegateNode {
    const shown = ctx.tolerant ? path.show() : path;
    for (const { namer, prefix } of this.#namers) {
      const mount = new Path([HASH, ...prefix.elems]);
      if (!path.startsWith(mount)) continue;
      if (namer.rewrite !== undefined) {
        // A rewriting namer (Linkerd 1's io.l5d.rewrite): its answer is a path delegated again.
        const next = namer.rewrite(path.drop(mount.size));
        if (next === undefined) continue;
        return {
          type: 'delegate',
          path: shown,
          dentry,
          delegate: this.#evalPath(ctx, next, { prefix: mount.show(), dst: next.show() }, depth + 1, nest + 1),
        };
      }
      const lookup = this.#namerLookup(namer, mount, path.drop(mount.size));
      ctx.used.add(lookup);
      const state = lookup.get();
      switch (state.kind) {
        case 'pending':
          // The binding waits for it only if no earlier alternative or other union member decides.
          return { type: 'exception', path: shown, dentry, message: `${namer.kind}: not resolved yet (pending)`, reason: 'pending' };
        case 'failed':
          return { type: 'exception', path: shown, dentry, message: `${namer.kind}: ${state.error.message}` };
        case 'ok': {
          const node = treeNode(shown, dentry, state.tree);
          if (node.type === 'neg') continue; // namers are tried in order
          // The path's own node is already counted; the namer's answer adds the rest.
          const nodes = treeSize(state.tree);
          this.#spend(ctx, 0, nodes - 1);
          // Each node of the answer repeats the path and dentry; the path's own node is counted by #evalPath.
          if (ctx.tolerant) this.#spendText(ctx, (nodes - 1) * textOf(node));
          return node;
        }
      }
    }
    return { type: 'neg', path: shown, dentry };
  }

  #namerLookup(namer: Namer, mount: Path, rest: Path): Var<Lookup> {
    const key = `${mount.show()} ${rest.show()}`;
    let shared = this.#lookups.get(key);
    if (shared === undefined) {
      const v = namer.lookup(rest);
      shared = this.#lookupsByVar.get(v);
      if (shared === undefined) {
        shared = { keys: [key], v, refs: 0 };
        this.#lookupsByVar.set(v, shared);
      } else shared.keys.push(key);
      this.#lookups.set(key, shared);
    }
    return shared.v;
  }

  /** Forgets a lookup no live binding watches: unobserved, the namer can drop its state. */
  #dropLookup(shared: SharedLookup): void {
    for (const key of shared.keys) if (this.#lookups.get(key) === shared) this.#lookups.delete(key);
    if (this.#lookupsByVar.get(shared.v) === shared) this.#lookupsByVar.delete(shared.v);
  }
}

function leafNode(path: string | Path, dentry: DentryJson | null, name: BoundName): DelegateNode {
  return {
    type: 'leaf',
    path,
    dentry,
    name,
    bound: { addr: addrJson(name.addr.get()), id: name.id.show(), path: name.residual.show() },
  };
}

/** Nodes in a namer's answer, for the budget. */
function treeSize(tree: NameTree<BoundName>): number {
  switch (tree.kind) {
    case 'alt':
      return tree.trees.reduce((n, t) => n + treeSize(t), 1);
    case 'union':
      return tree.members.reduce((n, m) => n + treeSize(m.tree), 1);
    default:
      return 1;
  }
}

/** A namer's answer (a tree of bound names) as delegation nodes. */
function treeNode(path: string | Path, dentry: DentryJson | null, tree: NameTree<BoundName>): DelegateNode {
  switch (tree.kind) {
    case 'leaf':
      return leafNode(path, dentry, tree.value);
    case 'alt':
      return { type: 'alt', path, dentry, alt: tree.trees.map((t) => treeNode(path, dentry, t)) };
    case 'union':
      return {
        type: 'union',
        path,
        dentry,
        union: tree.members.map((m) => ({ weight: m.weight, tree: treeNode(path, dentry, m.tree) })),
      };
    default:
      return { type: tree.kind, path, dentry };
  }
}

const dentryJsons = new WeakMap<Dentry, DentryJson>();

function dentryJson(d: Dentry): DentryJson {
  let j = dentryJsons.get(d);
  if (j === undefined) {
    j = { prefix: d.prefix.show(), dst: showNameTree(d.dst) };
    dentryJsons.set(d, j);
  }
  return j;
}

/**
 * One live binding of (dtab, path), shared by every handle on it: evaluated now, and again (in a
 * microtask) on every change of a namer lookup it read. Its methods and one observer function,
 * shared by all the lookups it watches, stand for what were five closures per binding and three
 * per watched lookup (issue 28: a router binding 1,000 names holds 1,000 of these).
 */
class LiveBinding {
  readonly state = new Var<Lookup>({ kind: 'pending' });
  refs = 0;
  #stopped = false;
  /** The namer lookups the last evaluation read, each with its shared entry (to release). */
  #watched = new Map<Var<Lookup>, SharedLookup | undefined>();
  readonly #onChange: () => void;

  constructor(
    readonly interpreter: NameInterpreter,
    readonly dtab: Dtab,
    readonly path: Path,
    readonly budget: number,
    /** Its key under its dtab in the interpreter's map. */
    readonly key: string,
  ) {
    const run = (): void => this.evaluate();
    this.#onChange = () => queueMicrotask(run);
  }

  evaluate(): void {
    if (this.#stopped) return;
    const { lookup, used } = this.interpreter.evaluateFor(this.dtab, this.path, this.budget);
    this.state.set(lookup);
    // Watch exactly the namer lookups this evaluation read.
    const old = this.#watched;
    const next = new Map<Var<Lookup>, SharedLookup | undefined>();
    for (const v of used) {
      if (old.has(v)) {
        next.set(v, old.get(v));
        old.delete(v);
      } else {
        v.observe(this.#onChange); // told of changes from now on: the value was just read
        next.set(v, this.interpreter.holdLookup(v));
      }
    }
    this.#unwatch(old);
    this.#watched = next;
  }

  stop(): void {
    this.#stopped = true;
    this.#unwatch(this.#watched);
    this.#watched = new Map();
  }

  #unwatch(watched: Map<Var<Lookup>, SharedLookup | undefined>): void {
    for (const [v, shared] of watched) {
      v.unobserve(this.#onChange);
      this.interpreter.releaseLookup(shared);
    }
  }
}

/** What `bind` hands out: the shared binding's state, and a close that lets go of it once. */
class BindingHandle implements Binding {
  #live: LiveBinding | undefined;
  readonly state: Var<Lookup>;

  constructor(live: LiveBinding) {
    this.#live = live;
    this.state = live.state;
  }

  close(): void {
    const live = this.#live;
    if (live === undefined) return;
    this.#live = undefined;
    if (--live.refs === 0) live.interpreter.unbind(live);
  }
}
