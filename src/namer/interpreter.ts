// Binds a logical path through a dtab and the configured namers (Finagle's name interpreter):
// records every step as a delegation tree and derives the simplified bound tree, live.

import type { Dtab } from '../dtab/dtab.js';
import type { Dentry } from '../dtab/dentry.js';
import type { NameTree } from '../dtab/name-tree.js';
import { Path } from '../dtab/path.js';
import { showNameTree } from '../dtab/show.js';
import { HostmeshError } from '../errors.js';
import type { BoundName, Lookup, Namer } from './addr.js';
import { InetAddrs, resolveBuiltin } from './builtins.js';
import { addrJson, boundTree, firstException, type DelegateNode, type DentryJson } from './delegate-tree.js';
import { Var } from './var.js';

export interface Binding {
  readonly state: Var<Lookup>;
  close(): void;
}

export interface InterpreterOptions {
  readonly namers: readonly Namer[];
  /** Delegation depth before binding stops with a loop error (Finagle uses 100). */
  readonly maxDepth?: number;
}

/** Thrown inside evaluation when a namer it needs has not answered yet. */
class PendingSignal {}

class LoopError extends Error {}

interface EvalContext {
  readonly dtab: Dtab;
  /** Every namer lookup Var the evaluation read, so a live binding can watch them. */
  readonly used: Set<Var<Lookup>>;
  /** When true, pending namers become 'pending' leaves instead of aborting (for explanations). */
  readonly tolerant: boolean;
}

const HASH = '#';

export class NameInterpreter {
  readonly #namers: readonly { namer: Namer; prefix: Path }[];
  readonly #maxDepth: number;
  readonly #inet = new InetAddrs();
  readonly #lookups = new Map<string, Var<Lookup>>();
  readonly #bindings = new Map<string, { state: Var<Lookup>; refs: number; stop: () => void }>();

  constructor(options: InterpreterOptions) {
    this.#namers = options.namers.map((namer) => ({ namer, prefix: namer.prefix }));
    this.#maxDepth = options.maxDepth ?? 100;
  }

  /** Live binding of `path` through `dtab` then the namers; shared by identical (dtab, path). */
  bind(dtab: Dtab, path: Path): Binding {
    const key = `${dtab.show()}\n${path.show()}`;
    let entry = this.#bindings.get(key);
    if (entry === undefined) {
      entry = this.#startBinding(dtab, path);
      this.#bindings.set(key, entry);
    }
    entry.refs++;
    const shared = entry;
    let closed = false;
    return {
      state: shared.state,
      close: () => {
        if (closed) return;
        closed = true;
        shared.refs--;
        if (shared.refs === 0) {
          shared.stop();
          this.#bindings.delete(key);
        }
      },
    };
  }

  /** One evaluation of the delegation tree, pending namers shown as pending (no waiting). */
  explain(dtab: Dtab, path: Path): DelegateNode {
    const ctx: EvalContext = { dtab, used: new Set(), tolerant: true };
    return this.#evalTop(ctx, path);
  }

  /** The delegation tree, waiting up to `timeoutMs` for namers that have not answered yet. */
  async delegate(dtab: Dtab, path: Path, options: { timeoutMs?: number } = {}): Promise<DelegateNode> {
    const binding = this.bind(dtab, path);
    try {
      if (binding.state.get().kind === 'pending') {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => done(), options.timeoutMs ?? 5000);
          let unsubscribe: (() => void) | undefined;
          const done = (): void => {
            clearTimeout(timer);
            unsubscribe?.();
            resolve();
          };
          unsubscribe = binding.state.subscribe((s) => {
            if (s.kind !== 'pending') queueMicrotask(done);
          });
        });
      }
      return this.explain(dtab, path);
    } finally {
      binding.close();
    }
  }

  #startBinding(dtab: Dtab, path: Path): { state: Var<Lookup>; refs: number; stop: () => void } {
    const state = new Var<Lookup>({ kind: 'pending' });
    let watched = new Map<Var<Lookup>, () => void>();
    let stopped = false;
    const evaluate = (): void => {
      if (stopped) return;
      const ctx: EvalContext = { dtab, used: new Set(), tolerant: false };
      state.set(this.#lookupOf(ctx, path));
      // Watch exactly the namer lookups this evaluation read.
      const next = new Map<Var<Lookup>, () => void>();
      for (const v of ctx.used) {
        const existing = watched.get(v);
        if (existing !== undefined) {
          next.set(v, existing);
          watched.delete(v);
        } else {
          let first = true;
          next.set(
            v,
            v.subscribe(() => {
              if (first) return; // subscribe calls back at once; that value was just read
              queueMicrotask(evaluate);
            }),
          );
          first = false;
        }
      }
      for (const unsubscribe of watched.values()) unsubscribe();
      watched = next;
    };
    evaluate();
    return {
      state,
      refs: 0,
      stop: () => {
        stopped = true;
        for (const unsubscribe of watched.values()) unsubscribe();
        watched = new Map();
      },
    };
  }

  #lookupOf(ctx: EvalContext, path: Path): Lookup {
    let tree: DelegateNode;
    try {
      tree = this.#evalTop(ctx, path);
    } catch (err) {
      if (err instanceof PendingSignal) return { kind: 'pending' };
      if (err instanceof LoopError) {
        return { kind: 'failed', error: new HostmeshError('DELEGATION_LOOP', err.message) };
      }
      throw err;
    }
    const bound = boundTree(tree);
    if (bound.kind === 'fail') {
      const message = firstException(tree);
      if (message !== undefined) return { kind: 'failed', error: new HostmeshError('BINDING_FAILED', message) };
    }
    return { kind: 'ok', tree: bound };
  }

  #evalTop(ctx: EvalContext, path: Path): DelegateNode {
    try {
      return this.#evalPath(ctx, path, null, 0);
    } catch (err) {
      if (err instanceof LoopError && ctx.tolerant) {
        return { type: 'exception', path: path.show(), dentry: null, message: err.message };
      }
      throw err;
    }
  }

  /** Binds one path reached through `dentry` (null at the root). */
  #evalPath(ctx: EvalContext, path: Path, dentry: DentryJson | null, depth: number): DelegateNode {
    if (depth > this.#maxDepth) {
      throw new LoopError(`delegation loop: binding ${path.show()} exceeded ${this.#maxDepth} steps`);
    }
    if (path.elems[0] === '$') return this.#evalBuiltin(ctx, path, dentry, depth);

    const matches = matchingDentries(ctx.dtab, path);
    if (matches.length === 0) {
      if (path.elems[0] === HASH) return this.#evalNamer(ctx, path, dentry);
      return { type: 'neg', path: path.show(), dentry };
    }
    // Several matching dentries form an alternation, the LAST dentry first.
    const children = matches.map((m) => this.#evalTree(ctx, m.dst, m.dentry, depth + 1));
    // Intermediate steps keep the Path itself: binding for traffic never prints them.
    if (children.length === 1) return { type: 'delegate', path, dentry, delegate: children[0] as DelegateNode };
    return { type: 'alt', path, dentry, alt: children };
  }

  /** Evaluates a dentry's destination tree (with the rest of the path already appended to leaves). */
  #evalTree(ctx: EvalContext, tree: NameTree<Path>, dentry: DentryJson, depth: number): DelegateNode {
    if (tree.kind === 'leaf') return this.#evalPath(ctx, tree.value, dentry, depth);
    const shown = showNameTree(tree);
    switch (tree.kind) {
      case 'neg':
        return { type: 'neg', path: shown, dentry };
      case 'fail':
        return { type: 'fail', path: shown, dentry };
      case 'empty':
        return { type: 'empty', path: shown, dentry };
      case 'alt':
        return { type: 'alt', path: shown, dentry, alt: tree.trees.map((t) => this.#evalTree(ctx, t, dentry, depth)) };
      case 'union':
        return {
          type: 'union',
          path: shown,
          dentry,
          union: tree.members.map((m) => ({ weight: m.weight, tree: this.#evalTree(ctx, m.tree, dentry, depth) })),
        };
    }
  }

  #evalBuiltin(ctx: EvalContext, path: Path, dentry: DentryJson | null, depth: number): DelegateNode {
    const shown = path.show();
    const result = resolveBuiltin(path, this.#inet);
    switch (result.kind) {
      case 'bound':
        return leafNode(shown, dentry, result.name);
      case 'rewrite':
        return {
          type: 'delegate',
          path: shown,
          dentry,
          delegate: this.#evalPath(ctx, result.path, { prefix: `/$/${result.via}`, dst: result.path.show() }, depth + 1),
        };
      case 'error':
        return { type: 'exception', path: shown, dentry, message: result.message };
      default:
        return { type: result.kind, path: shown, dentry };
    }
  }

  #evalNamer(ctx: EvalContext, path: Path, dentry: DentryJson | null): DelegateNode {
    const shown = path.show();
    for (const { namer, prefix } of this.#namers) {
      const mount = new Path([HASH, ...prefix.elems]);
      if (!path.startsWith(mount)) continue;
      const lookup = this.#namerLookup(namer, mount, path.drop(mount.size));
      ctx.used.add(lookup);
      const state = lookup.get();
      switch (state.kind) {
        case 'pending':
          if (!ctx.tolerant) throw new PendingSignal();
          return { type: 'exception', path: shown, dentry, message: `${namer.kind}: not resolved yet (pending)` };
        case 'failed':
          return { type: 'exception', path: shown, dentry, message: `${namer.kind}: ${state.error.message}` };
        case 'ok': {
          const node = treeNode(shown, dentry, state.tree);
          if (node.type === 'neg') continue; // namers are tried in order
          return node;
        }
      }
    }
    return { type: 'neg', path: shown, dentry };
  }

  #namerLookup(namer: Namer, mount: Path, rest: Path): Var<Lookup> {
    const key = `${mount.show()} ${rest.show()}`;
    let v = this.#lookups.get(key);
    if (v === undefined) {
      v = namer.lookup(rest);
      this.#lookups.set(key, v);
    }
    return v;
  }
}

function leafNode(path: string, dentry: DentryJson | null, name: BoundName): DelegateNode {
  return {
    type: 'leaf',
    path,
    dentry,
    name,
    bound: { addr: addrJson(name.addr.get()), id: name.id.show(), path: name.residual.show() },
  };
}

/** A namer's answer (a tree of bound names) as delegation nodes. */
function treeNode(path: string, dentry: DentryJson | null, tree: NameTree<BoundName>): DelegateNode {
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

/** The dentries whose prefix matches `path`, last first, each with its rewritten destination. */
function matchingDentries(dtab: Dtab, path: Path): { dentry: DentryJson; dst: NameTree<Path> }[] {
  const out: { dentry: DentryJson; dst: NameTree<Path> }[] = [];
  const dentries = dtab.dentries;
  const candidates = dtab.candidates(path);
  for (let k = candidates.length - 1; k >= 0; k--) {
    const d = dentries[candidates[k] as number] as Dentry;
    const rest = matchPrefix(d, path);
    if (rest === undefined) continue;
    out.push({
      dentry: dentryJson(d),
      dst: appendRest(d.dst, rest),
    });
  }
  return out;
}

/** The rest of `path` after the dentry's prefix, or undefined when it does not match. */
function matchPrefix(dentry: Dentry, path: Path): Path | undefined {
  const prefix = dentry.prefix;
  if (!prefix.matches(path)) return undefined;
  return path.drop(prefix.size);
}

function appendRest(tree: NameTree<Path>, rest: Path): NameTree<Path> {
  if (rest.isEmpty) return tree;
  switch (tree.kind) {
    case 'leaf':
      return { kind: 'leaf', value: tree.value.concat(rest) };
    case 'alt':
      return { kind: 'alt', trees: tree.trees.map((t) => appendRest(t, rest)) };
    case 'union':
      return { kind: 'union', members: tree.members.map((m) => ({ weight: m.weight, tree: appendRest(m.tree, rest) })) };
    default:
      return tree;
  }
}
