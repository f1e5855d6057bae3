// A delegation table: an ordered list of dentries. Later dentries take precedence; lookup is
// one pure rewrite step (Finagle's Dtab.lookup).

import type { Dentry } from './dentry.js';
import { NEG, type NameTree } from './name-tree.js';
import type { Path } from './path.js';
import { parseDtab } from './parse.js';
import { showDentry } from './show.js';

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

export class Dtab {
  static readonly empty = new Dtab([]);
  readonly dentries: readonly Dentry[];
  #shown: string | undefined;

  constructor(dentries: readonly Dentry[]) {
    this.dentries = dentries;
  }

  static read(text: string): Dtab {
    return parseDtab(text);
  }

  /** `other`'s dentries come after this one's, so they win. */
  concat(other: Dtab): Dtab {
    if (other.dentries.length === 0) return this;
    if (this.dentries.length === 0) return other;
    return new Dtab([...this.dentries, ...other.dentries]);
  }

  show(): string {
    this.#shown ??= this.dentries.map(showDentry).join(';');
    return this.#shown;
  }

  toString(): string {
    return this.show();
  }

  /** One rewrite step: matching dentries, last first, as an alternation; none is neg. */
  lookup(path: Path): NameTree<Path> {
    const matches: NameTree<Path>[] = [];
    for (let i = this.dentries.length - 1; i >= 0; i--) {
      const d = this.dentries[i] as Dentry;
      if (d.prefix.matches(path)) matches.push(appendRest(d.dst, path.drop(d.prefix.size)));
    }
    if (matches.length === 0) return NEG;
    if (matches.length === 1) return matches[0] as NameTree<Path>;
    return { kind: 'alt', trees: matches };
  }
}
