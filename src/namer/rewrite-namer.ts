// Linkerd 1's io.l5d.rewrite namer: `pattern` matches the path after the namer's prefix (literal
// elements, `*` for any one, `{var}` capturing one, or `{var}`s inside text such as `{svc}.{ns}`),
// and `name` is the path it becomes, with the captures substituted; what is left of the path is
// appended. Not matching is neg.
//   pattern: /{port}/{ns}/{svc}   name: /k8s/{ns}/{port}/{svc}   /http/default/world -> /k8s/default/http/world

import { Path } from '../dtab/path.js';
import { parsePath } from '../dtab/parse.js';
import type { Lookup, Namer } from './addr.js';
import { Var } from './var.js';
import { NEG } from '../dtab/name-tree.js';
import { type ElementPattern, elementPattern, matchElement, substituteVars, templateVars } from '../dtab/path-matcher.js';

function elements(text: string, what: string): string[] {
  if (!text.startsWith('/')) throw new Error(`${what} must be a path like /{ns}/{svc}`);
  return text
    .split('/')
    .slice(1)
    .filter((e) => e !== '');
}

export class RewriteNamer implements Namer {
  readonly kind = 'io.l5d.rewrite';
  readonly prefix: Path;
  readonly #pattern: ElementPattern[];
  /** Each element of `name`: text whose `{var}`s are filled from the pattern's captures. */
  readonly #name: string[];

  constructor(options: { prefix: string; pattern: string; name: string }) {
    this.prefix = parsePath(options.prefix);
    this.#pattern = elements(options.pattern, 'pattern').map((e) => {
      const p = elementPattern(e);
      if (p.kind === 'literal' && (e.includes('{') || e.includes('}'))) throw new Error(`pattern: '${e}' is neither a literal nor a {variable}`);
      return p;
    });
    this.#name = elements(options.name, 'name');
    const captured = new Set(this.#pattern.flatMap((p) => (p.kind === 'capture' ? [p.name] : p.kind === 'partial' ? p.names : [])));
    for (const e of this.#name) {
      if (e === '*') throw new Error("name: '*' is only for patterns");
      for (const v of templateVars(e)) if (!captured.has(v)) throw new Error(`name: {${v}} is not captured by the pattern`);
    }
  }

  rewrite(path: Path): Path | undefined {
    if (path.size < this.#pattern.length) return undefined;
    const vars = new Map<string, string>();
    for (let i = 0; i < this.#pattern.length; i++) {
      if (!matchElement(this.#pattern[i] as ElementPattern, path.elems[i] as string, vars)) return undefined;
    }
    const head = this.#name.map((e) => substituteVars(e, vars));
    return new Path([...head, ...path.elems.slice(this.#pattern.length)]);
  }

  /** Never used for a rewriting namer (the interpreter calls rewrite); neg for any other caller. */
  lookup(): Var<Lookup> {
    return new Var<Lookup>({ kind: 'ok', tree: NEG });
  }
}
