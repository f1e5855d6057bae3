// Prints name trees, dentries and dtabs exactly as Finagle's NameTree.show does: ` | ` and ` & `
// between members, parentheses only where reading back needs them, weights other than 1 as `0.50*`.

import type { Dentry } from './dentry.js';
import type { NameTree } from './name-tree.js';
import type { Path } from './path.js';

/**
 * Two decimals rounded half up on the shortest decimal form of the weight, as Java's `%.2f` does
 * (0.015 shows as `0.02`; Number.toFixed rounds the binary value and gives `0.01`).
 */
function showWeightValue(w: number): string {
  if (!Number.isFinite(w)) return String(w);
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(Math.abs(w)));
  if (m === null) return w.toFixed(2);
  const whole = m[1] as string;
  const digits = whole + (m[2] ?? '');
  // Digits of the hundredths: those before the decimal point, and two after it.
  const keep = whole.length + Number(m[3] ?? 0) + 2;
  let hundredths = 0n;
  if (keep >= 0) {
    const head = digits.slice(0, keep).padEnd(keep, '0');
    hundredths = BigInt(head === '' ? '0' : head) + ((digits[keep] ?? '0') >= '5' ? 1n : 0n);
  }
  const text = hundredths.toString().padStart(3, '0');
  return `${w < 0 ? '-' : ''}${text.slice(0, -2)}.${text.slice(-2)}`;
}

function showWeight(w: number): string {
  return w === 1 ? '' : `${showWeightValue(w)}*`;
}

/** An alternation or union of one member is shown as that member (Finagle shows no weight then). */
function single<T>(tree: NameTree<T>): NameTree<T> | undefined {
  if (tree.kind === 'alt' && tree.trees.length === 1) return tree.trees[0];
  if (tree.kind === 'union' && tree.members.length === 1) return tree.members[0]?.tree;
  return undefined;
}

/**
 * Shows a tree with any leaf printer (paths here, bound names in namer/delegate-tree). Members of
 * an alternation are shown without parentheses when they are unions (`&` binds tighter than `|`):
 * `/a | /b & /c`, as Finagle prints it.
 */
export function showTree<T>(tree: NameTree<T>, leaf: (value: T) => string): string {
  const one = single(tree);
  if (one !== undefined) return showTree(one, leaf);
  if (tree.kind === 'alt') return tree.trees.length === 0 ? '~' : tree.trees.map((t) => showMember(t, leaf)).join(' | ');
  return showMember(tree, leaf);
}

/** An alternation's member: a union as it is, a nested alternation in parentheses. */
function showMember<T>(tree: NameTree<T>, leaf: (value: T) => string): string {
  const one = single(tree);
  if (one !== undefined) return showMember(one, leaf);
  if (tree.kind === 'union') {
    return tree.members.length === 0 ? '~' : tree.members.map((m) => showWeight(m.weight) + showSimple(m.tree, leaf)).join(' & ');
  }
  return showSimple(tree, leaf);
}

function showSimple<T>(tree: NameTree<T>, leaf: (value: T) => string): string {
  const one = single(tree);
  if (one !== undefined) return showSimple(one, leaf);
  switch (tree.kind) {
    case 'leaf':
      return leaf(tree.value);
    case 'neg':
      return '~';
    case 'fail':
      return '!';
    case 'empty':
      return '$';
    case 'alt':
    case 'union':
      // An empty alternation or union binds as neg; Finagle prints nothing, which would not parse back.
      return (tree.kind === 'alt' ? tree.trees.length : tree.members.length) === 0 ? '~' : `(${showTree(tree, leaf)})`;
  }
}

export function showNameTree(tree: NameTree<Path>): string {
  return showTree(tree, (p) => p.show());
}

export function showDentry(d: Dentry): string {
  return `${d.prefix.show()}=>${showNameTree(d.dst)}`;
}
