// A delegation table: an ordered list of dentries. Later dentries take precedence; lookup is
// one pure rewrite step (Finagle's Dtab.lookup).

import type { Dentry } from './dentry.js';
import { NEG, type NameTree } from './name-tree.js';
import type { Path } from './path.js';
import { WILDCARD } from './prefix.js';
import { parseDentries } from './parse.js';
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

/** A dentry that matched a path, and its destination with the rest of the path appended. */
export interface DtabMatch {
  readonly dentry: Dentry;
  readonly dst: NameTree<Path>;
}

export class Dtab {
  static readonly empty = new Dtab([]);
  readonly dentries: readonly Dentry[];
  #shown: string | undefined;
  #index: Map<string, readonly number[]> | undefined;
  #anyFirst: readonly number[] = [];

  constructor(dentries: readonly Dentry[]) {
    this.dentries = dentries;
  }

  static read(text: string): Dtab {
    return new Dtab(parseDentries(text));
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

  /**
   * Indices of the dentries that may match `path`, in ascending order: those whose prefix starts
   * with the path's first label, plus those starting with `*` or empty. Built once per dtab, so a
   * lookup in a large dtab tests a handful of prefixes instead of all of them. The index is linear
   * in the dtab (wildcard dentries are kept apart and merged per lookup, not copied into every
   * label's list: 1,000 of each in a 16 KB header made 1,000,000 entries per request).
   */
  candidates(path: Path): readonly number[] {
    if (this.#index === undefined) {
      const index = new Map<string, number[]>();
      const any: number[] = [];
      this.dentries.forEach((d, i) => {
        const first = d.prefix.elems[0];
        if (first === undefined || first === WILDCARD) {
          any.push(i);
        } else {
          let list = index.get(first);
          if (list === undefined) index.set(first, (list = []));
          list.push(i);
        }
      });
      this.#index = index;
      this.#anyFirst = any;
    }
    const first = path.elems[0];
    const own = first === undefined ? undefined : this.#index.get(first);
    const any = this.#anyFirst;
    if (own === undefined) return any;
    if (any.length === 0) return own;
    const merged: number[] = [];
    let a = 0;
    let b = 0;
    while (a < own.length || b < any.length) {
      if (b >= any.length || (a < own.length && (own[a] as number) < (any[b] as number))) merged.push(own[a++] as number);
      else merged.push(any[b++] as number);
    }
    return merged;
  }

  /**
   * The dentries whose prefix matches `path`, last first (later dentries win), each with its
   * destination rewritten to carry the rest of the path. The one rule of prefix matching: `lookup`
   * and the interpreter (which needs to know which dentry made each branch) both use it.
   */
  matching(path: Path): DtabMatch[] {
    const out: DtabMatch[] = [];
    const candidates = this.candidates(path);
    for (let k = candidates.length - 1; k >= 0; k--) {
      const d = this.dentries[candidates[k] as number] as Dentry;
      if (d.prefix.matches(path)) out.push({ dentry: d, dst: appendRest(d.dst, path.drop(d.prefix.size)) });
    }
    return out;
  }

  /** One rewrite step: matching dentries, last first, as an alternation; none is neg. */
  lookup(path: Path): NameTree<Path> {
    const matches = this.matching(path);
    if (matches.length === 0) return NEG;
    if (matches.length === 1) return (matches[0] as DtabMatch).dst;
    return { kind: 'alt', trees: matches.map((m) => m.dst) };
  }
}

/** A dtab from its text (dentries separated by `;`); throws DtabParseError (parse.ts) when malformed. */
export function parseDtab(text: string): Dtab {
  return Dtab.read(text);
}
