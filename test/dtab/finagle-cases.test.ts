// The dtab language against the behaviour Finagle's own tests pin down (NameTreeParsersTest,
// PathTest, DtabTest, NameTreeTest), restated as tables of dtab strings: what parses to what, what
// is refused and with which marked message, and how trees, dentries and dtabs are shown.

import t from 'tap';
import { Dtab, parseDtab } from '../../src/dtab/dtab.js';
import type { NameTree } from '../../src/dtab/name-tree.js';
import { Path } from '../../src/dtab/path.js';
import { DtabParseError, parseDentry, parseNameTree, parsePath } from '../../src/dtab/parse.js';
import { WILDCARD } from '../../src/dtab/prefix.js';
import { showNameTree } from '../../src/dtab/show.js';

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DtabParseError) return e.message;
    throw e;
  }
  return 'parsed';
}

const leaf = (...elems: string[]): NameTree<Path> => ({ kind: 'leaf', value: new Path(elems) });
const alt = (...trees: NameTree<Path>[]): NameTree<Path> => ({ kind: 'alt', trees });
const union = (...members: [number, NameTree<Path>][]): NameTree<Path> => ({ kind: 'union', members: members.map(([weight, tree]) => ({ weight, tree })) });

t.test('paths: accepted, with their labels and shown form', async (t) => {
  const cases: [string, string[], string][] = [
    ['/', [], '/'],
    ['  /foo/bar  ', ['foo', 'bar'], '/foo/bar'],
    ['/\\x66\\x6f\\x6F', ['foo'], '/foo'],
    ['/#foo', ['#foo'], '/#foo'],
    ['/foo # a comment', ['foo'], '/foo'],
    ['\t/a/b\n', ['a', 'b'], '/a/b'],
    ['/a\\x2fb', ['a/b'], '/\\x61\\x2f\\x62'],
    ['/ok/a\\x20b', ['ok', 'a b'], '/ok/\\x61\\x20\\x62'],
    ['/\\x00', ['\u0000'], '/\\x00'],
    ['/\\xE9t\\xE9', ['\u00e9t\u00e9'], '/\\xe9\\x74\\xe9'],
    ['/UPPER/lower', ['UPPER', 'lower'], '/UPPER/lower'],
  ];
  for (const [text, elems, shown] of cases) {
    const p = parsePath(text);
    t.same(p.elems, elems, JSON.stringify(text));
    t.equal(p.show(), shown, `${JSON.stringify(text)} shows`);
    t.ok(parsePath(shown).equals(p), `${shown} reads back`);
  }
});

t.test('paths: refused, the spot marked as Finagle marks it', async (t) => {
  const cases: [string, string][] = [
    ['', "'/' expected but end of input found at '[]'"],
    ['/foo/bar/', "label char expected but end of input found at '/foo/bar/[]'"],
    ['/{}', "end of input expected but '{' found at '/[{]}'"],
    ['/\\?', "'x' expected but '?' found at '/\\[?]'"],
    ['/\\x?', "hex char expected but '?' found at '/\\x[?]'"],
    ['/\\x0?', "hex char expected but '?' found at '/\\x0[?]'"],
    ['/foo^bar', "end of input expected but '^' found at '/foo[^]bar'"],
    ['//', "end of input expected but '/' found at '/[/]'"],
    ['/a b', "end of input expected but 'b' found at '/a [b]'"],
    ['/*', "end of input expected but '*' found at '/[*]'"],
  ];
  for (const [text, want] of cases)
    t.equal(
      message(() => parsePath(text)),
      want,
      JSON.stringify(text),
    );
});

t.test('name trees: structure as Finagle parses it', async (t) => {
  const cases: [string, NameTree<Path>][] = [
    ['! | ~ | $', alt({ kind: 'fail' }, { kind: 'neg' }, { kind: 'empty' })],
    ['/foo/bar', leaf('foo', 'bar')],
    ['  /foo & /bar  ', union([1, leaf('foo')], [1, leaf('bar')])],
    ['  /foo | /bar  ', alt(leaf('foo'), leaf('bar'))],
    ['/foo & /bar | /bar & /baz', alt(union([1, leaf('foo')], [1, leaf('bar')]), union([1, leaf('bar')], [1, leaf('baz')]))],
    ['1 * /foo & 2 * /bar | .5 * /bar & .5 * /baz', alt(union([1, leaf('foo')], [2, leaf('bar')]), union([0.5, leaf('bar')], [0.5, leaf('baz')]))],
    // One weighted member alone is its tree: the weight is dropped.
    ['0.5 * /a', leaf('a')],
    ['3*(/a | /b)', alt(leaf('a'), leaf('b'))],
    ['1. * /a & /b', union([1, leaf('a')], [1, leaf('b')])],
    ['((/a))', leaf('a')],
  ];
  for (const [text, tree] of cases) t.same(parseNameTree(text), tree, text);
});

t.test('name trees: refused', async (t) => {
  const cases: [string, string][] = [
    ['', "simple expected but end of input found at '[]'"],
    ['#', "simple expected but end of input found at '#[]'"],
    ['/foo &', "simple expected but end of input found at '/foo &[]'"],
    ['/foo & 0.1.2 * /bar', "number char expected but '.' found at '/foo & 0.1[.]2 * /bar'"],
    // Finagle names the lone `.` it read, and marks the char after it.
    ['/foo & . * /bar', "weight expected but '.' found at '/foo & .[ ]* /bar'"],
    ['/foo & .', "weight expected but '.' found at '/foo & .[]'"],
    ['2 /a', "'*' expected but '/' found at '2 [/]a'"],
    ['/a | | /b', "simple expected but '|' found at '/a | [|] /b'"],
    ['(/a', "')' expected but end of input found at '(/a[]'"],
    ['/a)', "end of input expected but ')' found at '/a[)]'"],
    ['1e3 * /a', "'*' expected but 'e' found at '1[e]3 * /a'"],
    ['-1 * /a', "simple expected but '-' found at '[-]1 * /a'"],
    // U+00A0 is not whitespace to Java's Character.isWhitespace either.
    ['/a\u00a0| /b', "end of input expected but '\u00a0' found at '/a[\u00a0]| /b'"],
  ];
  for (const [text, want] of cases)
    t.equal(
      message(() => parseNameTree(text)),
      want,
      JSON.stringify(text),
    );
});

t.test('whitespace is what Java calls whitespace', async (t) => {
  for (const ws of [' ', '\t', '\n', '\r', '\f', '\v', '\u001c', '\u001f', '\u2003', '\u2028', '\u3000']) {
    const name = `U+${(ws.codePointAt(0) as number).toString(16).padStart(4, '0')}`;
    t.equal(showNameTree(parseNameTree(`${ws}/a${ws}|${ws}/b${ws}`)), '/a | /b', name);
  }
  for (const notWs of ['\u0085', '\u00a0', '\u2007', '\u202f', '\u200b']) {
    t.not(
      message(() => parseNameTree(`/a${notWs}| /b`)),
      'parsed',
      `U+${(notWs.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
    );
  }
});

t.test('name trees: shown as Finagle shows them', async (t) => {
  const cases: [string, string][] = [
    ['/foo & /bar | /bar & /baz', '/foo & /bar | /bar & /baz'],
    ['1 * /foo & 2 * /bar | .5 * /bar & .5 * /baz', '/foo & 2.00*/bar | 0.50*/bar & 0.50*/baz'],
    ['/a | (/b & /c)', '/a | /b & /c'],
    ['(/a | /b) | /c', '(/a | /b) | /c'],
    ['/a | (/b | /c)', '/a | (/b | /c)'],
    ['(/a & /b) & /c', '(/a & /b) & /c'],
    ['(/a | /b) & /c', '(/a | /b) & /c'],
    ['2 * (/a | /b) & /c', '2.00*(/a | /b) & /c'],
    ['0 * /a & /b', '0.00*/a & /b'],
    ['9 * /a & 10 * /b', '9.00*/a & 10.00*/b'],
    // Two decimals rounded half up on the decimal form, as Java's %.2f.
    ['0.125 * /a & /b', '0.13*/a & /b'],
    ['0.015 * /a & /b', '0.02*/a & /b'],
    ['1.005 * /a & /b', '1.01*/a & /b'],
    ['0.004 * /a & /b', '0.00*/a & /b'],
    ['0.005 * /a & /b', '0.01*/a & /b'],
    ['12345 * /a & /b', '12345.00*/a & /b'],
    ['0.5 * /a', '/a'],
    ['~ | (~ | $) | /blah', '~ | (~ | $) | /blah'],
    ['(~|$|/foo) & (/bar|/blah) & ~ & /FOO', '(~ | $ | /foo) & (/bar | /blah) & ~ & /FOO'],
  ];
  for (const [text, shown] of cases) {
    const tree = parseNameTree(text);
    t.equal(showNameTree(tree), shown, text);
    t.equal(showNameTree(parseNameTree(shown)), shown, `${shown} reads back`);
  }
  // Rounded to 1.00, a weight reads back as the default (as in Finagle).
  t.equal(showNameTree(parseNameTree('0.995 * /a & /b')), '1.00*/a & /b');
  // Trees built in code: one-member alternations and unions show as their member.
  t.equal(showNameTree({ kind: 'union', members: [{ weight: 0.3, tree: leaf('a') }] }), '/a');
  t.equal(showNameTree({ kind: 'alt', trees: [{ kind: 'union', members: [{ weight: 2, tree: leaf('a') }] }] }), '/a');
  t.equal(
    showNameTree({ kind: 'alt', trees: [leaf('x'), { kind: 'alt', trees: [leaf('a')] }] }),
    '/x | /a',
    'a nested one-member alternation needs no parentheses',
  );
});

t.test('dentries: empty prefix, wildcards, refusals', async (t) => {
  const ok: [string, (string | typeof WILDCARD)[], string][] = [
    ['/=>!', [], '/=>!'],
    ['/ => !', [], '/=>!'],
    ['/foo/*/bar => !', ['foo', WILDCARD, 'bar'], '/foo/*/bar=>!'],
    ['/foo/bar/baz => !', ['foo', 'bar', 'baz'], '/foo/bar/baz=>!'],
    ['/* => /a', [WILDCARD], '/*=>/a'],
    ['/\\x2a => /a', ['*'], '/\\x2a=>/a'],
  ];
  for (const [text, prefix, shown] of ok) {
    const d = parseDentry(text);
    t.same(d.prefix.elems, prefix, text);
    t.equal(`${d.prefix.show()}=>${showNameTree(d.dst)}`, shown, `${text} shows`);
  }
  t.equal(
    message(() => parseDentry('/foo/*bar/baz => !')),
    "'=' expected but 'b' found at '/foo/*[b]ar/baz => !'",
  );
  t.equal(
    message(() => parseDentry('/&!')),
    "'=' expected but '&' found at '/[&]!'",
  );
  t.equal(
    message(() => parseDentry('/a => ')),
    "simple expected but end of input found at '/a => []'",
  );
});

t.test('dtabs: empty, trailing semicolon, comments, concatenation', async (t) => {
  const cases: [string, string][] = [
    ['', ''],
    ['  /=>!  ', '/=>!'],
    ['/=>!;', '/=>!'],
    ['/=>!;/foo=>/bar', '/=>!;/foo=>/bar'],
    ['\n  /b => /c;\n  /a => /b;\n  ', '/b=>/c;/a=>/b'],
    [
      '# a comment\n  /#foo => /biz  # another comment\n   | ( /bliz & # yet another\n   /bluth ) # the end\n  ; #finally\n  #/ignore=>/me;\n',
      '/#foo=>/biz | /bliz & /bluth',
    ],
  ];
  for (const [text, shown] of cases) t.equal(parseDtab(text).show(), shown, JSON.stringify(text));
  const d1 = Dtab.read('/foo => /bar');
  const d2 = Dtab.read('/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090');
  t.equal(d1.concat(d2).show(), '/foo=>/bar;/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090');
  t.equal(d1.concat(Dtab.empty), d1);
});

t.test('lookup: wildcards, last dentry first, the rest of the path appended', async (t) => {
  const cases: [string, string, string][] = [
    ['/a/*/c => /d', '/a/b/c/e/f', '/d/e/f'],
    ['/a/*/c => /d', '/a/b', '~'],
    ['/a/*/* => /d', '/a/b/c', '/d'],
    ['/* => /d', '/', '~'],
    ['/ => /d', '/', '/d'],
    ['/foo=>/bar;/foo=>/biz', '/foo', '/biz | /bar'],
    ['/foo=>/biz;/foo=>/bar', '/foo/x', '/bar/x | /biz/x'],
    ['/foo=>/a | /b;/foo/x=>/c & /d', '/foo/x/y', '/c/y & /d/y | (/a/x/y | /b/x/y)'],
    ['/foo=>~', '/foo/x', '~'],
    ['/foo=>0.5*/a & /b', '/foo/x', '0.50*/a/x & /b/x'],
  ];
  for (const [dtab, path, want] of cases) t.equal(showNameTree(Dtab.read(dtab).lookup(parsePath(path))), want, `${dtab} @ ${path}`);
});

t.test('random trees of whole weights read back from their shown form (NameTreeTest)', async (t) => {
  // A fixed sequence, so the test is the same on every run.
  let seed = 1234;
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const words = ['Lorem', 'ipsum', 'dolor', 'sit', 'amet', 'do', 'ut', 'Ut'];
  const newLeaf = (): NameTree<Path> => {
    const k = next(4);
    if (k === 0) return { kind: 'fail' };
    if (k === 1) return { kind: 'empty' };
    if (k === 2) return { kind: 'neg' };
    return leaf(...Array.from({ length: 1 + next(5) }, () => words[next(words.length)] as string));
  };
  const newTree = (depth: number): NameTree<Path> => {
    const k = next(3);
    if (depth === 0 || k === 0) return newLeaf();
    const n = 1 + next(3);
    if (k === 1) {
      const members = Array.from({ length: n }, () => ({ weight: next(10), tree: newTree(depth - 1) }));
      return n === 1 ? (members[0] as { tree: NameTree<Path> }).tree : { kind: 'union', members };
    }
    const trees = Array.from({ length: n }, () => newTree(depth - 1));
    return n === 1 ? (trees[0] as NameTree<Path>) : { kind: 'alt', trees };
  };
  for (let i = 0; i < 200; i++) {
    const tree = newTree(3);
    t.same(parseNameTree(showNameTree(tree)), tree, showNameTree(tree));
  }
});
