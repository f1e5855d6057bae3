// A delegation table entry: `prefix => tree`. Paths matching the prefix are rewritten to the
// tree's paths followed by the rest of the path.

import type { NameTree } from './name-tree.js';
import type { Path } from './path.js';
import type { Prefix } from './prefix.js';

export interface Dentry {
  readonly prefix: Prefix;
  readonly dst: NameTree<Path>;
}
