// A dentry prefix: like a path, but an element may be the wildcard `*`, matching any one label.

import { Path, showLabel } from './path.js';

export const WILDCARD: unique symbol = Symbol('*');
export type PrefixElem = string | typeof WILDCARD;

export class Prefix {
  readonly elems: readonly PrefixElem[];

  constructor(elems: readonly PrefixElem[]) {
    this.elems = elems;
  }

  get size(): number {
    return this.elems.length;
  }

  matches(path: Path): boolean {
    if (this.elems.length > path.elems.length) return false;
    for (let i = 0; i < this.elems.length; i++) {
      const e = this.elems[i];
      if (e !== WILDCARD && e !== path.elems[i]) return false;
    }
    return true;
  }

  show(): string {
    if (this.elems.length === 0) return '/';
    return '/' + this.elems.map((e) => (e === WILDCARD ? '*' : showLabel(e))).join('/');
  }

  equals(other: Prefix): boolean {
    return this.elems.length === other.elems.length && this.elems.every((e, i) => e === other.elems[i]);
  }
}

export { Path };
