// Where a value sits in a YAML input file (the config, the authorization policy): `file:line:col`
// of a key path, and yaml's own syntax errors in the same form. One helper for every YAML file
// hostmesh reads, so each reports positions the same way.

import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';

export type KeyPath = readonly (string | number)[];

/** `routers[0].servers[1].port` (or `(top level)` for the empty path). */
export function showPath(path: KeyPath): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out === '' ? k : `.${k}`;
  return out || '(top level)';
}

/** A parsed YAML file: the document, its syntax errors positioned, and positions of key paths. */
export class YamlFile {
  readonly doc: Document;
  private readonly lines: LineCounter;

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.lines = new LineCounter();
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }

  /** yaml's syntax errors as `file:line:col: first line of the message` (the rest is an excerpt of the file). */
  syntaxErrors(): string[] {
    return this.doc.errors.map((e) => {
      const { line, col } = this.lines.linePos(e.pos[0]);
      const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
      return `${this.file}:${line}:${col}: ${first}`;
    });
  }

  /** file:line:col of the value at `path` (of the key `keyOf` in it when given), or of its nearest parent that exists. */
  at(path: KeyPath, keyOf?: string): string {
    for (let n = path.length; n >= 0; n--) {
      const sub = path.slice(0, n);
      const node = sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true);
      if (node !== null && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
        let offset = node.range[0] as number;
        if (keyOf !== undefined && n === path.length && isMap(node)) {
          const pair = node.items.find((p) => isScalar(p.key) && p.key.value === keyOf);
          if (pair !== undefined && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
        }
        const { line, col } = this.lines.linePos(offset);
        return `${this.file}:${line}:${col}`;
      }
    }
    return `${this.file}:1:1`;
  }
}
