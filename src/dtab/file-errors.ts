// Positions for dtab errors in files: `file:line:col: message`, 1-based, as compilers print them.
// A file is echoed only if it is a dtab up to the error (a dtabFile may point at a secret).

import type { DtabParseError } from './parse.js';

function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      start = i + 1;
    }
  }
  return { line, col: offset - start + 1 };
}

/** Characters of the offending line shown either side of the error. */
const EXCERPT = 32;

/**
 * Whether the text before `offset` began a dentry: after whitespace and `#` comments, its first
 * character is the `/` of a prefix. A token, a password hash or a key file fails at its first
 * character, so nothing of it is echoed; a dtab with a typo gets its excerpt.
 */
function startsLikeDtab(text: string, offset: number): boolean {
  let i = 0;
  while (i < offset) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') i++;
    else if (c === '#') {
      const nl = text.indexOf('\n', i);
      if (nl === -1) return false;
      i = nl + 1;
    } else return c === '/';
  }
  return false;
}

/** Control characters and non-ASCII as \xNN / \uNNNN: an excerpt is one printable line. */
function escapeText(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => {
    const cp = c.charCodeAt(0);
    return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

/**
 * The error with its position in `file`. For a file that is a dtab up to the error: what was
 * found and a short escaped excerpt of the offending line; for any other file only what the
 * parser expected (never its content).
 */
export function formatDtabFileError(file: string, text: string, err: DtabParseError): string {
  const { line, col } = lineCol(text, err.offset);
  const expected = /^([\s\S]*?) expected but /.exec(err.message)?.[1];
  if (!startsLikeDtab(text, err.offset)) {
    return `${file}:${line}:${col}: ${expected !== undefined ? `${expected} expected` : 'syntax error'}: not a dtab (its content is not shown)`;
  }
  const lineStart = text.lastIndexOf('\n', err.offset - 1) + 1;
  let lineEnd = text.indexOf('\n', err.offset);
  if (lineEnd === -1) lineEnd = text.length;
  const from = Math.max(lineStart, err.offset - EXCERPT);
  const to = Math.min(lineEnd, err.offset + 1 + EXCERPT);
  const at = text.slice(err.offset, err.offset + 1);
  const found = at === '' ? 'end of input' : `'${escapeText(at)}'`;
  const marked = `${from > lineStart ? '...' : ''}${escapeText(text.slice(from, err.offset))}[${escapeText(at)}]${escapeText(text.slice(err.offset + 1, to))}${to < lineEnd ? '...' : ''}`;
  // The file is a dtab here, so the parser's own wording may be shown (cut, escaped).
  const what = expected !== undefined ? `${expected} expected but ${found} found` : escapeText(err.message.replace(/ at '[\s\S]*$/, '').slice(0, 80));
  return `${file}:${line}:${col}: ${what} at '${marked}'`;
}
