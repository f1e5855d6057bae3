// Linkerd 1's PathMatcher elements: a pattern element is a literal label, `*` (any one element), or
// text holding `{name}` captures, whole (`{service}`) or inside literal text (`{service}:https`,
// `{svc}.{ns}`). Used by per-prefix configs (`configs[].prefix`, commonName "{service}") and the
// io.l5d.rewrite namer. Unlike Linkerd 1's unanchored regex, an element must match whole.

/** Linkerd 1's capture names: letters, digits and `_ . : -`. */
const NAME = '[A-Za-z0-9_.:-]+';
const CAPTURE = new RegExp(`\\{(${NAME})\\}`, 'g');
const WHOLE = new RegExp(`^\\{(${NAME})\\}$`);

export type ElementPattern =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'any' }
  /** `{name}` alone: captures the whole label. */
  | { readonly kind: 'capture'; readonly name: string }
  /** `{name}`s inside literal text: the label must match `regex` whole; groups in `names` order. */
  | { readonly kind: 'partial'; readonly names: readonly string[]; readonly regex: RegExp; readonly literals: readonly string[] };

/** Reads one pattern element (`*`, `{name}`, `{a}.{b}`, or a literal; braces left unpaired stay literal text). */
export function elementPattern(text: string): ElementPattern {
  if (text === '*') return { kind: 'any' };
  const whole = WHOLE.exec(text);
  if (whole !== null) return { kind: 'capture', name: whole[1] as string };
  const names = [...text.matchAll(CAPTURE)].map((m) => m[1] as string);
  if (names.length === 0) return { kind: 'literal', text };
  const literals = text.split(CAPTURE).filter((_, i) => i % 2 === 0);
  // Greedy groups, as Linkerd 1's `(.*)`: `{a}.{b}` on `x.y.z` gives a=x.y, b=z.
  const regex = new RegExp(`^${literals.map(escapeRegex).join('(.*)')}$`, 's');
  return { kind: 'partial', names, regex, literals };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether `label` matches `p`, adding its captures to `vars`. */
export function matchElement(p: ElementPattern, label: string, vars?: Map<string, string>): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'literal':
      return p.text === label;
    case 'capture':
      vars?.set(p.name, label);
      return true;
    case 'partial': {
      const m = p.regex.exec(label);
      if (m === null) return false;
      p.names.forEach((n, i) => vars?.set(n, m[i + 1] as string));
      return true;
    }
  }
}

/** Fills `{name}`s in `template` from `vars` (an unknown name stays as written, as Linkerd 1). */
export function substituteVars(template: string, vars: ReadonlyMap<string, string>): string {
  return template.replace(CAPTURE, (whole, name: string) => vars.get(name) ?? whole);
}

/** The `{name}`s a template refers to. */
export function templateVars(template: string): string[] {
  return [...template.matchAll(CAPTURE)].map((m) => m[1] as string);
}
