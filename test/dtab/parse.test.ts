// Table-driven tests of the dtab language, written as dtab strings (Finagle's DtabTest/NameTreeTest style).

import t from 'tap';
import { Dtab, parseDtab } from '../../src/dtab/dtab.js';
import { formatDtabFileError } from '../../src/dtab/file-errors.js';
import { DtabParseError, parseDentry, parseNameTree, parsePath } from '../../src/dtab/parse.js';
import { showNameTree } from '../../src/dtab/show.js';

function err(f: () => unknown): DtabParseError {
  try {
    f();
  } catch (e) {
    if (e instanceof DtabParseError) return e;
    throw e;
  }
  throw new Error('expected a DtabParseError');
}

t.test('paths', async (t) => {
  const ok: [string, string[], string][] = [
    ['/', [], '/'],
    ['/foo/bar', ['foo', 'bar'], '/foo/bar'],
    ['  /foo ', ['foo'], '/foo'],
    ['/#/io.l5d.k8s/default', ['#', 'io.l5d.k8s', 'default'], '/#/io.l5d.k8s/default'],
    ['/$/inet/127.0.0.1/8080', ['$', 'inet', '127.0.0.1', '8080'], '/$/inet/127.0.0.1/8080'],
    ['/a\\x2fb', ['a/b'], '/\\x61\\x2f\\x62'],
    ['/\\x41bc', ['Abc'], '/Abc'],
    ['/x%y:z_-', ['x%y:z_-'], '/x%y:z_-'],
  ];
  for (const [text, elems, shown] of ok) {
    const p = parsePath(text);
    t.same(p.elems, elems, text);
    t.equal(p.show(), shown, `${text} shows`);
  }
});

t.test('error messages mark the spot as Finagle does', async (t) => {
  const cases: [() => unknown, string][] = [
    [() => parsePath('/foo^bar'), "end of input expected but '^' found at '/foo[^]bar'"],
    [() => parsePath('/foo/'), "label char expected but end of input found at '/foo/[]'"],
    [() => parsePath('foo'), "'/' expected but 'f' found at '[f]oo'"],
    [() => parsePath('/a\\x4'), "hex char expected but end of input found at '/a\\x4[]'"],
    [() => parsePath('/a\\y'), "'x' expected but 'y' found at '/a\\[y]'"],
    [() => parseNameTree('/a | '), "simple expected but end of input found at '/a | []'"],
    [() => parseNameTree('(/a'), "')' expected but end of input found at '(/a[]'"],
    [() => parseDentry('/a = /b'), "'>' expected but ' ' found at '/a =[ ]/b'"],
    [() => parseDtab('/a=>/b;;'), "'/' expected but ';' found at '/a=>/b;[;]'"],
    [() => parseNameTree('0.5 /a'), "'*' expected but '/' found at '0.5 [/]a'"],
  ];
  for (const [f, message] of cases) t.equal(err(f).message, message);
});

t.test('name trees: operators, precedence, weights, show', async (t) => {
  const cases: [string, string][] = [
    ['/a', '/a'],
    ['!', '!'],
    ['~', '~'],
    ['$', '$'],
    ['/a | /b', '/a | /b'],
    ['/a & /b', '/a & /b'],
    ['/a | /b & /c', '/a | /b & /c'],
    ['/a | (/b & /c)', '/a | /b & /c'],
    ['(/a | /b) & /c', '(/a | /b) & /c'],
    ['/a & (/b | /c)', '/a & (/b | /c)'],
    ['0.5 * /a & 0.5 * /b', '0.50*/a & 0.50*/b'],
    ['1 * /a & 2*/b', '/a & 2.00*/b'],
    ['.25*/a & /b', '0.25*/a & /b'],
    ['.25*/a', '/a'],
    ['((/a))', '/a'],
    ['(/a | /b) | /c', '(/a | /b) | /c'],
    ['/a|/b|~|!|$', '/a | /b | ~ | ! | $'],
  ];
  for (const [text, shown] of cases) {
    const tree = parseNameTree(text);
    t.equal(showNameTree(tree), shown, text);
    t.same(parseNameTree(shown), tree, `${shown} parses back`);
  }
});

t.test('dtabs: comments, trailing semicolons, empty, show', async (t) => {
  t.equal(parseDtab('').dentries.length, 0);
  t.equal(parseDtab(' /a=>/b ; ').dentries.length, 1, 'trailing semicolon');
  t.match(err(() => parseDtab(';')).message, /'\/' expected but ';' found/, 'a lone semicolon is not a dentry (as Finagle)');
  const d = parseDtab(`
    # the Linkerd 1 DaemonSet shape
    /srv => /#/io.l5d.k8s/default/http; # k8s services
    /host => /srv;
    /svc => /host;
  `);
  t.equal(d.show(), '/srv=>/#/io.l5d.k8s/default/http;/host=>/srv;/svc=>/host');
  t.same(Dtab.read(d.show()), d);
  t.equal(parseDtab('/s/*/x => /y').show(), '/s/*/x=>/y');
});

t.test('lookup: last dentry first, prefix rewrite, wildcard, neg', async (t) => {
  const cases: [string, string, string][] = [
    ['/a=>/b', '/a/c', '/b/c'],
    ['/a=>/b', '/x', '~'],
    ['/a=>/b;/a=>/c', '/a/d', '/c/d | /b/d'],
    ['/a=>/c;/a=>/b', '/a/d', '/b/d | /c/d'],
    ['/a=>/b;/a/x=>/y', '/a/x/z', '/y/z | /b/x/z'],
    ['/s/*/x=>/y', '/s/anything/x/1', '/y/1'],
    ['/s/*/x=>/y', '/s/x', '~'],
    ['/a=>/b | /c', '/a/1', '/b/1 | /c/1'],
    ['/a=>0.3*/b & 0.7*/c', '/a/1', '0.30*/b/1 & 0.70*/c/1'],
    ['/=>/root', '/x', '/root/x'],
    ['/a=>!', '/a', '!'],
  ];
  for (const [dtab, path, result] of cases) {
    t.equal(showNameTree(Dtab.read(dtab).lookup(parsePath(path))), result, `${dtab} @ ${path}`);
  }
});

t.test('concat: the later dtab wins (d1 ++ d2 vs d2 ++ d1)', async (t) => {
  const d1 = Dtab.read('/a=>/one');
  const d2 = Dtab.read('/a=>/two');
  t.equal(showNameTree(d1.concat(d2).lookup(parsePath('/a'))), '/two | /one');
  t.equal(showNameTree(d2.concat(d1).lookup(parsePath('/a'))), '/one | /two');
  t.equal(Dtab.empty.concat(d1), d1);
});

t.test('labels with bytes that are not label chars show as \\xhh', async (t) => {
  const p = parsePath('/a\\x20b\\xff');
  t.equal(p.elems[0], 'a b\u00ff');
  t.equal(p.show(), '/\\x61\\x20\\x62\\xff', 'every byte of such a label, as Finagle');
});

t.test('file errors carry file:line:col (1-based)', async (t) => {
  const text = '/a => /b;\n/c => /d^;\n';
  const e = err(() => parseDtab(text));
  t.equal(formatDtabFileError('x.dtab', text, e), "x.dtab:2:9: ';' expected but '^' found at '/c => /d[^];'".replace("';' expected", 'end of input expected'));
});
