// Prints name trees, dentries and dtabs exactly as Finagle does: ` | ` and ` & ` between members,
// parentheses around nested alternations and unions, weights other than 1 as `0.50*`.

import type { Dentry } from './dentry.js';
import type { NameTree } from './name-tree.js';
import type { Path } from './path.js';

function showWeight(w: number): string {
  return w === 1 ? '' : `${w.toFixed(2)}*`;
}

/** Shows a tree with any leaf printer (paths here, bound names in namer/delegate-tree). */
export function showTree<T>(tree: NameTree<T>, leaf: (value: T) => string): string {
  switch (tree.kind) {
    case 'alt':
      return tree.trees.length === 0 ? '~' : tree.trees.map((t) => showSimple(t, leaf)).join(' | ');
    case 'union':
      return tree.members.length === 0 ? '~' : tree.members.map((m) => showWeight(m.weight) + showSimple(m.tree, leaf)).join(' & ');
    default:
      return showSimple(tree, leaf);
  }
}

function showSimple<T>(tree: NameTree<T>, leaf: (value: T) => string): string {
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
      return `(${showTree(tree, leaf)})`;
  }
}

export function showNameTree(tree: NameTree<Path>): string {
  return showTree(tree, (p) => p.show());
}

export function showDentry(d: Dentry): string {
  return `${d.prefix.show()}=>${showNameTree(d.dst)}`;
}
