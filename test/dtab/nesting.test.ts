// The parser bounds how deeply name trees nest (parentheses), so nothing recursive over a parsed
// dtab (show, lookup, binding, JSON) can overflow the stack; errors keep Finagle's marker, cut short.

import t from 'tap';
import { Dtab, parseDtab } from '../../src/dtab/dtab.js';
import { DtabParseError, MAX_TREE_NESTING, parseNameTree } from '../../src/dtab/parse.js';

t.test('7,000 nested parentheses are a parse error, not a stack overflow', async (t) => {
  const text = `/svc=>${'('.repeat(7000)}/a${')'.repeat(7000)}`;
  let err: unknown;
  try {
    parseDtab(text);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof DtabParseError, `a DtabParseError, got ${String(err)}`);
  const e = err as DtabParseError;
  t.match(e.message, new RegExp(`^at most ${MAX_TREE_NESTING} nested parentheses expected but '\\(' found at '`));
  t.equal(e.offset, 6 + MAX_TREE_NESTING, 'the offset is the first parenthesis too many');
  t.match(e.message, /found at '\/svc=>\(+\[\(\]\(+\.\.\.'$/, 'the marked excerpt is cut after the spot');
  const late = `/svc=>/${'x'.repeat(200)} | ${'('.repeat(40)}/a`;
  t.throws(() => parseDtab(late), { message: /found at '\.\.\.x+ \| \(+\[\(\]\(+\/a'$/ }, 'and before it');
  t.ok(e.message.length < 300, `a short message (${e.message.length} chars)`);
});

t.test('nesting up to the limit parses, shows and round-trips', async (t) => {
  const deep = (n: number): string => (n === 0 ? '/a' : `(${deep(n - 1)} | /b)`);
  const ok = `/svc=>${deep(MAX_TREE_NESTING)}`;
  const dtab = parseDtab(ok);
  t.equal(Dtab.read(dtab.show()).show(), dtab.show());
  t.throws(() => parseDtab(`/svc=>${deep(MAX_TREE_NESTING + 1)}`), DtabParseError);
  t.throws(() => parseNameTree('('.repeat(100_000)), DtabParseError, '100,000 parentheses too');
  // Redundant parentheses around one path nest nothing, but still count: the limit is syntactic.
  t.throws(() => parseNameTree(`${'('.repeat(MAX_TREE_NESTING + 1)}/a${')'.repeat(MAX_TREE_NESTING + 1)}`), DtabParseError);
});

t.test('short inputs keep the whole marked text', async (t) => {
  t.throws(() => parseNameTree('(/a'), { message: "')' expected but end of input found at '(/a[]'" });
});
