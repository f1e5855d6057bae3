// A Finagle path: a sequence of labels, shown as `/a/b` (`/` alone is the empty path).
// Labels are byte strings held as latin1 JS strings (each char code 0-255), as Finagle's Buf labels.

// A 256-entry table: label chars are [A-Za-z0-9_:.#$%-] (a regex per char was a hot spot).
const LABEL_TABLE = new Uint8Array(256);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.#$%-') LABEL_TABLE[c.charCodeAt(0)] = 1;

function isLabelCode(code: number): boolean {
  return code < 256 && LABEL_TABLE[code] === 1;
}

/**
 * Shows one label as Finagle's Path.showElem does: as it is when every byte is a label char, else
 * every byte as `\xhh`: `a b` shows as `\x61\x20\x62`, not `a\x20b` (what Linkerd 1's delegator and
 * namerd print, and what the dtab language reads back).
 */
export function showLabel(label: string): string {
  let plain = true;
  for (let i = 0; i < label.length && plain; i++) plain = isLabelCode(label.charCodeAt(i));
  if (plain) return label;
  let out = '';
  for (let i = 0; i < label.length; i++) {
    const code = label.charCodeAt(i);
    if (code <= 0xff) {
      out += '\\x' + code.toString(16).padStart(2, '0');
    } else {
      // Labels hold bytes (latin1); a wider char from code is shown as its UTF-8 bytes.
      for (const b of Buffer.from(label[i] as string, 'utf8')) out += '\\x' + b.toString(16).padStart(2, '0');
    }
  }
  return out;
}

export class Path {
  static readonly empty = new Path([]);
  readonly elems: readonly string[];
  #shown: string | undefined;

  constructor(elems: readonly string[]) {
    this.elems = elems;
  }

  static of(...elems: string[]): Path {
    return new Path(elems);
  }

  get size(): number {
    return this.elems.length;
  }

  get isEmpty(): boolean {
    return this.elems.length === 0;
  }

  startsWith(prefix: Path): boolean {
    if (prefix.elems.length > this.elems.length) return false;
    for (let i = 0; i < prefix.elems.length; i++) if (prefix.elems[i] !== this.elems[i]) return false;
    return true;
  }

  take(n: number): Path {
    return new Path(this.elems.slice(0, n));
  }

  drop(n: number): Path {
    return n === 0 ? this : new Path(this.elems.slice(n));
  }

  concat(other: Path): Path {
    if (other.isEmpty) return this;
    if (this.isEmpty) return other;
    return new Path([...this.elems, ...other.elems]);
  }

  equals(other: Path): boolean {
    return this.elems.length === other.elems.length && this.startsWith(other);
  }

  show(): string {
    this.#shown ??= this.elems.length === 0 ? '/' : '/' + this.elems.map(showLabel).join('/');
    return this.#shown;
  }

  toString(): string {
    return this.show();
  }
}
