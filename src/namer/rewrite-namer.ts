// Linkerd 1's io.l5d.rewrite namer: `pattern` matches the path after the namer's prefix (literal
// elements, `*` for any one, `{var}` capturing one), and `name` is the path it becomes, with the
// captures substituted; what is left of the path is appended. Not matching is neg.
//   pattern: /{port}/{ns}/{svc}   name: /k8s/{ns}/{port}/{svc}   /http/default/world -> /k8s/default/http/world

import { Path } from '../dtab/path.js';
import { parsePath } from '../dtab/parse.js';
import type { Lookup, Namer } from './addr.js';
import { Var } from './var.js';
import { NEG } from '../dtab/name-tree.js';

type Segment = { readonly kind: 'literal'; readonly text: string } | { readonly kind: 'any' } | { readonly kind: 'capture'; readonly name: string };

const CAPTURE = /^\{([A-Za-z0-9_.-]+)\}$/;

function segments(text: string, what: string): Segment[] {
  if (!text.startsWith('/')) throw new Error(`${what} must be a path like /{ns}/{svc}`);
  return text
    .split('/')
    .slice(1)
    .filter((e) => e !== '')
    .map((e) => {
      if (e === '*') return { kind: 'any' };
      const m = CAPTURE.exec(e);
      if (m !== null) return { kind: 'capture', name: m[1] as string };
      if (e.includes('{') || e.includes('}')) throw new Error(`${what}: '${e}' is neither a literal nor a {variable}`);
      return { kind: 'literal', text: e };
    });
}

export class RewriteNamer implements Namer {
  readonly kind = 'io.l5d.rewrite';
  readonly prefix: Path;
  readonly #pattern: Segment[];
  readonly #name: Segment[];

  constructor(options: { prefix: string; pattern: string; name: string }) {
    this.prefix = parsePath(options.prefix);
    this.#pattern = segments(options.pattern, 'pattern');
    this.#name = segments(options.name, 'name');
    const captured = new Set(this.#pattern.flatMap((s) => (s.kind === 'capture' ? [s.name] : [])));
    for (const s of this.#name) {
      if (s.kind === 'any') throw new Error("name: '*' is only for patterns");
      if (s.kind === 'capture' && !captured.has(s.name)) throw new Error(`name: {${s.name}} is not captured by the pattern`);
    }
  }

  rewrite(path: Path): Path | undefined {
    if (path.size < this.#pattern.length) return undefined;
    const vars = new Map<string, string>();
    for (let i = 0; i < this.#pattern.length; i++) {
      const seg = this.#pattern[i] as Segment;
      const elem = path.elems[i] as string;
      if (seg.kind === 'literal' && seg.text !== elem) return undefined;
      if (seg.kind === 'capture') vars.set(seg.name, elem);
    }
    const head = this.#name.map((s) => (s.kind === 'literal' ? s.text : (vars.get((s as { name: string }).name) as string)));
    return new Path([...head, ...path.elems.slice(this.#pattern.length)]);
  }

  /** Never used for a rewriting namer (the interpreter calls rewrite); neg for any other caller. */
  lookup(): Var<Lookup> {
    return new Var<Lookup>({ kind: 'ok', tree: NEG });
  }
}
