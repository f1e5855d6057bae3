// The delegation tree: every step binding took (path, the dentry that rewrote it, the outcome), in
// the JSON shape of Linkerd 1's delegator, which `hostmesh delegate`, /delegator.json and the
// dashboard show. Also derives the simplified bound tree the router balances over.

import type { NameTree, Weighted } from '../dtab/name-tree.js';
import { EMPTY, FAIL, NEG } from '../dtab/name-tree.js';
import type { Path } from '../dtab/path.js';
import { showNameTree, showTree } from '../dtab/show.js';
import { endpointKey, type Addr, type BoundName } from './addr.js';

export interface DentryJson {
  readonly prefix: string;
  readonly dst: string;
}

/** A destination tree's text, made only if someone reads it (binding for traffic never does). */
export class TreeText {
  constructor(readonly tree: NameTree<Path>) {}

  toString(): string {
    return showNameTree(this.tree);
  }
}

interface NodeBase {
  /** A Path or tree on the bind path (shown only when someone reads the tree), or already shown text. */
  readonly path: string | Path | TreeText;
  readonly dentry: DentryJson | null;
}

export type DelegateNode =
  | (NodeBase & { readonly type: 'delegate'; readonly delegate: DelegateNode })
  | (NodeBase & { readonly type: 'alt'; readonly alt: readonly DelegateNode[] })
  | (NodeBase & { readonly type: 'union'; readonly union: readonly { weight: number; tree: DelegateNode }[] })
  | (NodeBase & { readonly type: 'leaf'; readonly bound: BoundJson; readonly name: BoundName })
  | (NodeBase & { readonly type: 'neg' | 'fail' | 'empty' })
  | (NodeBase & { readonly type: 'exception'; readonly message: string });

export interface BoundJson {
  readonly addr: AddrJson;
  readonly id: string;
  readonly path: string;
}

export type AddrJson =
  | { type: 'bound'; addrs: { ip: string; port: number; meta: Record<string, string> }[]; meta: Record<string, never> }
  | { type: 'neg' }
  | { type: 'pending' }
  | { type: 'failed'; cause: string };

export function addrJson(addr: Addr): AddrJson {
  switch (addr.kind) {
    case 'bound':
      return {
        type: 'bound',
        addrs: addr.endpoints.map((e) => {
          const meta: Record<string, string> = {};
          for (const [k, v] of Object.entries(e.meta)) if (v !== undefined) meta[k] = v;
          return { ip: e.host, port: e.port, meta };
        }),
        meta: {},
      };
    case 'neg':
      return { type: 'neg' };
    case 'pending':
      return { type: 'pending' };
    case 'failed':
      return { type: 'failed', cause: addr.error.message };
  }
}

/** The JSON form without internal fields (bound names carry live Vars). */
export function delegateJson(node: DelegateNode): unknown {
  switch (node.type) {
    case 'delegate':
      return { type: node.type, path: String(node.path), dentry: node.dentry, delegate: delegateJson(node.delegate) };
    case 'alt':
      return { type: node.type, path: String(node.path), dentry: node.dentry, alt: node.alt.map(delegateJson) };
    case 'union':
      return {
        type: node.type,
        path: String(node.path),
        dentry: node.dentry,
        union: node.union.map((m) => ({ weight: m.weight, tree: delegateJson(m.tree) })),
      };
    case 'leaf':
      return { type: node.type, path: String(node.path), dentry: node.dentry, bound: node.bound };
    case 'exception':
      return { type: node.type, path: String(node.path), dentry: node.dentry, message: node.message };
    default:
      return { type: node.type, path: String(node.path), dentry: node.dentry };
  }
}

/**
 * The bound tree with Finagle's semantics applied: an alternation is its first child that is not
 * neg (a fail child fails it, empty counts as a result); a union keeps the children that bound and
 * drops neg and fail; single children collapse. The router then sees only leaf | union | neg | fail | empty.
 */
export function boundTree(node: DelegateNode): NameTree<BoundName> {
  return bound(node, { map: undefined });
}

/**
 * Bound trees already derived in one walk, per node with several children. Evaluation shares a
 * subtree wherever the same path is reached again, so without it a union of two shared halves
 * would be walked 2^depth times. Made on the first such node: chains are walked as they are.
 */
interface BoundCache {
  map: Map<DelegateNode, NameTree<BoundName>> | undefined;
}

function bound(node: DelegateNode, cache: BoundCache): NameTree<BoundName> {
  switch (node.type) {
    case 'leaf':
      return { kind: 'leaf', value: node.name };
    case 'neg':
      return NEG;
    case 'fail':
    case 'exception':
      return FAIL;
    case 'empty':
      return EMPTY;
    case 'delegate':
      return bound(node.delegate, cache);
    case 'alt':
    case 'union': {
      const several = node.type === 'alt' ? node.alt.length > 1 : node.union.length > 1;
      if (!several) return node.type === 'alt' ? (node.alt[0] === undefined ? NEG : bound(node.alt[0], cache)) : deriveUnion(node.union, cache);
      cache.map ??= new Map();
      let tree = cache.map.get(node);
      if (tree === undefined) {
        tree = node.type === 'alt' ? deriveAlt(node.alt, cache) : deriveUnion(node.union, cache);
        cache.map.set(node, tree);
      }
      return tree;
    }
  }
}

function deriveAlt(children: readonly DelegateNode[], cache: BoundCache): NameTree<BoundName> {
  for (const child of children) {
    const tree = bound(child, cache);
    if (tree.kind !== 'neg') return tree;
  }
  return NEG;
}

function deriveUnion(members: readonly { weight: number; tree: DelegateNode }[], cache: BoundCache): NameTree<BoundName> {
  const kept: Weighted<BoundName>[] = [];
  for (const m of members) {
    const tree = bound(m.tree, cache);
    if (tree.kind !== 'neg' && tree.kind !== 'fail') kept.push({ weight: m.weight, tree });
  }
  if (kept.length === 0) return NEG;
  if (kept.length === 1) return (kept[0] as Weighted<BoundName>).tree;
  return { kind: 'union', members: kept };
}

/** The first exception message in the tree, if binding hit one that decided the result. */
export function firstException(node: DelegateNode): string | undefined {
  return exceptionIn(node, { map: undefined });
}

function exceptionIn(node: DelegateNode, cache: BoundCache): string | undefined {
  switch (node.type) {
    case 'exception':
      return node.message;
    case 'delegate':
      return exceptionIn(node.delegate, cache);
    case 'alt':
      for (const c of node.alt) {
        const t = bound(c, cache);
        if (t.kind === 'neg') continue;
        return t.kind === 'fail' ? exceptionIn(c, cache) : undefined;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** The bound tree in dtab syntax with bound ids as leaves (`~` neg, `!` fail, `$` empty), as dtab/show prints trees. */
export function showBound(tree: NameTree<BoundName>): string {
  return showTree(tree, (b) => b.id.show() + (b.residual.isEmpty ? '' : b.residual.show()));
}

/** A readable rendering: one line per step, indented, with the dentry that applied. */
export function renderDelegateText(node: DelegateNode, indent = ''): string {
  // Lines are collected, not concatenated per level: nesting a subtree's whole text into its
  // parent's string at every level made a 1,000-level tree take seconds.
  const lines: string[] = [];
  renderInto(node, indent, lines);
  return lines.join('\n');
}

function renderInto(node: DelegateNode, indent: string, lines: string[]): void {
  const via = node.dentry === null ? '' : `  (${node.dentry.prefix}=>${node.dentry.dst})`;
  lines.push(`${indent}${String(node.path)}${via}`);
  const next = indent + '  ';
  switch (node.type) {
    case 'delegate':
      renderInto(node.delegate, next, lines);
      return;
    case 'alt':
      lines.push(`${next}alternation (first that binds wins):`);
      for (const c of node.alt) renderInto(c, next + '  ', lines);
      return;
    case 'union':
      lines.push(`${next}union:`);
      for (const m of node.union) {
        lines.push(`${next}  weight ${m.weight}:`);
        renderInto(m.tree, next + '    ', lines);
      }
      return;
    case 'leaf': {
      const a = node.bound.addr;
      const addrs = a.type === 'bound' ? a.addrs.map((x) => endpointKey({ host: x.ip, port: x.port })).join(', ') || '(none)' : a.type;
      lines.push(`${next}bound: ${node.bound.id}${node.bound.path === '/' ? '' : ` residual ${node.bound.path}`} -> ${addrs}`);
      return;
    }
    case 'exception':
      lines.push(`${next}error: ${node.message}`);
      return;
    case 'neg':
      lines.push(`${next}neg (no route)`);
      return;
    case 'fail':
      lines.push(`${next}fail`);
      return;
    case 'empty':
      lines.push(`${next}empty`);
      return;
  }
}

export type { Path };
