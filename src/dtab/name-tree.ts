// Finagle's NameTree: the value a dtab rewrites a path into, and what binding produces.
// A discriminated union so every consumer must handle neg, fail and empty.

export type NameTree<T> =
  | { readonly kind: 'leaf'; readonly value: T }
  | { readonly kind: 'alt'; readonly trees: readonly NameTree<T>[] }
  | { readonly kind: 'union'; readonly members: readonly Weighted<T>[] }
  | { readonly kind: 'neg' }
  | { readonly kind: 'fail' }
  | { readonly kind: 'empty' };

export interface Weighted<T> {
  readonly weight: number;
  readonly tree: NameTree<T>;
}

export const NEG: NameTree<never> = Object.freeze({ kind: 'neg' });
export const FAIL: NameTree<never> = Object.freeze({ kind: 'fail' });
export const EMPTY: NameTree<never> = Object.freeze({ kind: 'empty' });

export function leaf<T>(value: T): NameTree<T> {
  return { kind: 'leaf', value };
}
