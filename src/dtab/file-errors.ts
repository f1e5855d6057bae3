// Positions for dtab errors in files: `file:line:col: message`, 1-based, as compilers print them.

import type { DtabParseError } from './parse.js';

export function lineCol(text: string, offset: number): { line: number; col: number } {
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

/** The error with its position in `file`; the marked excerpt is cut to the offending line. */
export function formatDtabFileError(file: string, text: string, err: DtabParseError): string {
  const { line, col } = lineCol(text, err.offset);
  const lineStart = text.lastIndexOf('\n', err.offset - 1) + 1;
  let lineEnd = text.indexOf('\n', err.offset);
  if (lineEnd === -1) lineEnd = text.length;
  const found = err.message.replace(/ at '[\s\S]*'$/, '');
  const rel = err.offset - lineStart;
  const src = text.slice(lineStart, lineEnd);
  const marked = `${src.slice(0, rel)}[${src.slice(rel, rel + 1)}]${src.slice(rel + 1)}`;
  return `${file}:${line}:${col}: ${found} at '${marked}'`;
}
