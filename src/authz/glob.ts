// Glob patterns of the authorization policy (`*` matches any run of characters, nothing else is
// special), compiled once into matchers whose cost is linear in the input: no regular expressions.

/**
 * A compiled `*` glob. Matching anchors the first literal at the start and the last at the end,
 * then places every middle literal at its leftmost position after the previous one. For `*`-only
 * patterns leftmost placement is always safe (a later placement never leaves more room), so the
 * matcher never backtracks: a hostile pattern such as `a*a*a*a*a*b` against a 100 kB name costs one
 * scan, where a backtracking regex would take exponential time.
 */
export class Glob {
  readonly source: string;
  readonly #prefix: string;
  readonly #suffix: string;
  readonly #middle: readonly string[];
  readonly #minLength: number;
  /** 'exact': no `*`; 'any': only `*`s; 'glob': the general case. */
  readonly #kind: 'exact' | 'any' | 'glob';

  constructor(source: string) {
    this.source = source;
    const parts = source.split('*');
    if (parts.length === 1) {
      this.#kind = 'exact';
      this.#prefix = source;
      this.#suffix = '';
      this.#middle = [];
    } else {
      this.#prefix = parts[0] as string;
      this.#suffix = parts[parts.length - 1] as string;
      // Empty middles come from `**`; they constrain nothing.
      this.#middle = parts.slice(1, -1).filter((p) => p !== '');
      this.#kind = this.#prefix === '' && this.#suffix === '' && this.#middle.length === 0 ? 'any' : 'glob';
    }
    this.#minLength = parts.reduce((n, p) => n + p.length, 0);
  }

  /** True when the pattern has no `*` (it matches one string only). */
  get exact(): boolean {
    return this.#kind === 'exact';
  }

  test(s: string): boolean {
    switch (this.#kind) {
      case 'exact':
        return s === this.#prefix;
      case 'any':
        return true;
      case 'glob': {
        if (s.length < this.#minLength || !s.startsWith(this.#prefix) || !s.endsWith(this.#suffix)) return false;
        let at = this.#prefix.length;
        const end = s.length - this.#suffix.length;
        for (const lit of this.#middle) {
          const found = s.indexOf(lit, at);
          if (found === -1 || found + lit.length > end) return false;
          at = found + lit.length;
        }
        return true;
      }
    }
  }
}
