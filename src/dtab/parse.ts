// The dtab language parser (Finagle's NameTreeParsers): paths, prefixes, name trees, dentries and
// dtabs. Errors name what was expected and mark the spot: `... but '^' found at '/foo[^]bar'`.

import type { Dentry } from './dentry.js';
import { EMPTY, FAIL, NEG, type NameTree, type Weighted } from './name-tree.js';
import { Path } from './path.js';
import { Prefix, WILDCARD, type PrefixElem } from './prefix.js';

export class DtabParseError extends Error {
  /** Offset (0-based, in UTF-16 code units of the input) of the character that was not expected. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.name = 'DtabParseError';
    this.offset = offset;
  }
}

function isShowable(c: string): boolean {
  return (
    (c >= 'a' && c <= 'z') ||
    (c >= 'A' && c <= 'Z') ||
    (c >= '0' && c <= '9') ||
    c === '_' ||
    c === ':' ||
    c === '.' ||
    c === '#' ||
    c === '$' ||
    c === '%' ||
    c === '-'
  );
}

function isLabelStart(c: string): boolean {
  return isShowable(c) || c === '\\';
}

function isNumberChar(c: string): boolean {
  return (c >= '0' && c <= '9') || c === '.';
}

function isHex(c: string): boolean {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/**
 * Java's Character.isWhitespace, which Finagle's parser skips: ASCII space and controls \t-\r and
 * \x1c-\x1f, and Unicode space separators except the no-break ones (U+00A0, U+2007, U+202F).
 */
function isWhitespace(c: string): boolean {
  const code = c.charCodeAt(0);
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code >= 0x1c;
  if (code < 0x1680) return false;
  return code === 0x1680 || (code >= 0x2000 && code <= 0x200a && code !== 0x2007) || code === 0x2028 || code === 0x2029 || code === 0x205f || code === 0x3000;
}

const EOI = '';

/**
 * How deeply parentheses may nest in a name tree. Real dtabs nest two or three levels; the bound
 * keeps every recursive walk over a parsed tree (show, lookup, binding, JSON) far from the stack
 * limit, so 7,000 parentheses in an l5d-dtab header are a parse error, not a RangeError.
 */
export const MAX_TREE_NESTING = 32;

/** Characters kept on each side of the marked spot in an error; a long input is cut with `...`. */
const MARK_CONTEXT = 60;

class Parser {
  #i = 0;
  #nesting = 0;
  readonly #s: string;

  constructor(s: string) {
    this.#s = s;
  }

  #peek(): string {
    return this.#i < this.#s.length ? (this.#s[this.#i] as string) : EOI;
  }

  #illegal(expected: string, foundText?: string): never {
    const c = this.#peek();
    const found = foundText ?? (c === EOI ? 'end of input' : `'${c}'`);
    const s = this.#s;
    // Cut long inputs around the spot: the message travels in l5d-err, which clients cap in size.
    const from = Math.max(0, this.#i - MARK_CONTEXT);
    const to = Math.min(s.length, this.#i + 1 + MARK_CONTEXT);
    const before = (from > 0 ? '...' : '') + s.slice(from, this.#i);
    const after = s.slice(this.#i + 1, to) + (to < s.length ? '...' : '');
    const marked = `${before}[${s.slice(this.#i, this.#i + 1)}]${after}`;
    throw new DtabParseError(`${expected} expected but ${found} found at '${marked}'`, this.#i);
  }

  #eat(c: string): void {
    if (this.#peek() !== c) this.#illegal(`'${c}'`);
    this.#i++;
  }

  #maybeEat(c: string): boolean {
    if (this.#peek() !== c) return false;
    this.#i++;
    return true;
  }

  /** Skips whitespace and `#` comments (to end of line): only here is `#` a comment. */
  eatWhitespace(): void {
    for (;;) {
      const c = this.#peek();
      if (c !== EOI && isWhitespace(c)) {
        this.#i++;
      } else if (c === '#') {
        while (this.#peek() !== EOI && this.#peek() !== '\n') this.#i++;
      } else {
        return;
      }
    }
  }

  ensureEnd(): void {
    this.eatWhitespace();
    if (this.#peek() !== EOI) this.#illegal('end of input');
  }

  #parseLabel(): string {
    let out = '';
    for (;;) {
      const c = this.#peek();
      if (c === '\\') {
        this.#i++;
        this.#eat('x');
        const h1 = this.#peek();
        if (!isHex(h1)) this.#illegal('hex char');
        this.#i++;
        const h2 = this.#peek();
        if (!isHex(h2)) this.#illegal('hex char');
        this.#i++;
        out += String.fromCharCode(parseInt(h1 + h2, 16));
      } else if (c !== EOI && isShowable(c)) {
        out += c;
        this.#i++;
      } else {
        if (out === '') this.#illegal('label char');
        return out;
      }
    }
  }

  parsePath(): Path {
    this.eatWhitespace();
    this.#eat('/');
    if (!isLabelStart(this.#peek())) return Path.empty;
    const labels: string[] = [];
    do labels.push(this.#parseLabel());
    while (this.#maybeEat('/'));
    return new Path(labels);
  }

  parsePrefix(): Prefix {
    this.eatWhitespace();
    this.#eat('/');
    const c = this.#peek();
    if (!isLabelStart(c) && c !== '*') return new Prefix([]);
    const elems: PrefixElem[] = [];
    do {
      if (this.#maybeEat('*')) elems.push(WILDCARD);
      else elems.push(this.#parseLabel());
    } while (this.#maybeEat('/'));
    return new Prefix(elems);
  }

  parseTree(): NameTree<Path> {
    const trees: NameTree<Path>[] = [];
    do trees.push(this.#parseTree1());
    while (this.#maybeEatSkipping('|'));
    return trees.length === 1 ? (trees[0] as NameTree<Path>) : { kind: 'alt', trees };
  }

  #maybeEatSkipping(c: string): boolean {
    this.eatWhitespace();
    return this.#maybeEat(c);
  }

  #parseTree1(): NameTree<Path> {
    const members: Weighted<Path>[] = [];
    do members.push(this.#parseWeighted());
    while (this.#maybeEatSkipping('&'));
    // One member is its tree, whatever its weight: Finagle drops the weight of `0.5 * /a` alone.
    if (members.length === 1) return (members[0] as Weighted<Path>).tree;
    return { kind: 'union', members };
  }

  #parseWeighted(): Weighted<Path> {
    this.eatWhitespace();
    let weight = 1;
    if (isNumberChar(this.#peek())) {
      weight = this.#parseNumber();
      this.eatWhitespace();
      this.#eat('*');
    }
    return { weight, tree: this.#parseSimple() };
  }

  /** Digits with at most one `.` (`2`, `.5`, `1.`), marked where Finagle marks a bad one. */
  #parseNumber(): number {
    const start = this.#i;
    let dot = false;
    while (isNumberChar(this.#peek())) {
      if (this.#peek() === '.') {
        if (dot) this.#illegal('number char');
        dot = true;
      }
      this.#i++;
    }
    const text = this.#s.slice(start, this.#i);
    // Finagle names the `.` it read but marks the char after it: `'.' found at '. [*]...'`.
    if (text === '.') this.#illegal('weight', "'.'");
    return Number(text);
  }

  #parseSimple(): NameTree<Path> {
    this.eatWhitespace();
    switch (this.#peek()) {
      case '(': {
        if (this.#nesting >= MAX_TREE_NESTING) this.#illegal(`at most ${MAX_TREE_NESTING} nested parentheses`);
        this.#i++;
        this.#nesting++;
        const tree = this.parseTree();
        this.eatWhitespace();
        this.#eat(')');
        this.#nesting--;
        return tree;
      }
      case '/':
        return { kind: 'leaf', value: this.parsePath() };
      case '!':
        this.#i++;
        return FAIL;
      case '~':
        this.#i++;
        return NEG;
      case '$':
        this.#i++;
        return EMPTY;
      default:
        return this.#illegal('simple');
    }
  }

  parseDentry(): Dentry {
    const prefix = this.parsePrefix();
    this.eatWhitespace();
    this.#eat('=');
    this.#eat('>');
    const dst = this.parseTree();
    return { prefix, dst };
  }

  parseDentries(): Dentry[] {
    const dentries: Dentry[] = [];
    do {
      this.eatWhitespace();
      if (this.#peek() !== EOI) dentries.push(this.parseDentry());
      this.eatWhitespace();
    } while (this.#maybeEat(';'));
    return dentries;
  }
}

function whole<T>(text: string, f: (p: Parser) => T): T {
  const p = new Parser(text);
  const value = f(p);
  p.ensureEnd();
  return value;
}

export function parsePath(text: string): Path {
  return whole(text, (p) => p.parsePath());
}

export function parsePrefix(text: string): Prefix {
  return whole(text, (p) => p.parsePrefix());
}

export function parseNameTree(text: string): NameTree<Path> {
  return whole(text, (p) => p.parseTree());
}

export function parseDentry(text: string): Dentry {
  return whole(text, (p) => p.parseDentry());
}

/** A dtab's dentries, `;`-separated (an empty text has none); `parseDtab` (dtab.ts) makes the Dtab. */
export function parseDentries(text: string): Dentry[] {
  return whole(text, (p) => p.parseDentries());
}
