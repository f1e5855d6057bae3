// Binding against the behaviour Finagle's own tests pin down (NameTreeTest, NamerTest,
// DefaultInterpreterTest) and Linkerd 1's interpreter (the dtab first, then the namers, then the
// built-in /$ names), restated as tables: a namer whose answers the test sets per name.

import t, { type Test } from 'tap';
import { Dtab } from '../../src/dtab/dtab.js';
import { NEG } from '../../src/dtab/name-tree.js';
import { Path } from '../../src/dtab/path.js';
import { parsePath } from '../../src/dtab/parse.js';
import { HostmeshError } from '../../src/errors.js';
import type { Addr, Lookup, Namer } from '../../src/namer/addr.js';
import { showBound } from '../../src/namer/delegate-tree.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { Var } from '../../src/namer/var.js';

type Answer = 'bound' | 'neg' | 'pending' | 'failed';

/** A namer at /#/t: `/#/t/<name>` answers what `answers` says for the name (bound by default). */
class TableNamer implements Namer {
  readonly kind = 'table';
  readonly prefix = Path.of('t');
  readonly vars = new Map<string, Var<Lookup>>();
  constructor(readonly answers: Map<string, Answer> = new Map()) {}
  lookup(path: Path): Var<Lookup> {
    const name = path.elems[0] ?? '';
    let v = this.vars.get(name);
    if (v === undefined) {
      v = new Var<Lookup>(this.state(name, path));
      this.vars.set(name, v);
    }
    return v;
  }
  set(name: string, answer: Answer): void {
    this.answers.set(name, answer);
    this.vars.get(name)?.set(this.state(name, Path.of(name)));
  }
  state(name: string, path: Path): Lookup {
    switch (this.answers.get(name) ?? 'bound') {
      case 'neg':
        return { kind: 'ok', tree: NEG };
      case 'pending':
        return { kind: 'pending' };
      case 'failed':
        return { kind: 'failed', error: new Error(`${name} broke`) };
      case 'bound': {
        const addr = new Var<Addr>({ kind: 'bound', endpoints: [{ host: '10.0.0.1', port: 80, meta: {} }] });
        return { kind: 'ok', tree: { kind: 'leaf', value: { id: new Path(['#', 't', name]), residual: path.drop(1), addr } } };
      }
    }
  }
}

function shown(l: Lookup): string {
  if (l.kind === 'ok') return showBound(l.tree);
  if (l.kind === 'pending') return 'pending';
  const code = l.error instanceof HostmeshError ? l.error.code : 'error';
  return `failed ${code}: ${l.error.message}`;
}

function bindNow(interp: NameInterpreter, dtab: string, path: string): string {
  const b = interp.bind(Dtab.read(dtab), parsePath(path));
  const s = shown(b.state.get());
  b.close();
  return s;
}

/** Changes one name's answer at a time and checks what the live binding says after each. */
async function walk(t: Test, namer: TableNamer, state: Var<Lookup>, steps: [string, Answer, string][]): Promise<void> {
  for (const [name, answer, want] of steps) {
    namer.set(name, answer);
    await new Promise((r) => setImmediate(r)); // a binding re-evaluates in a microtask
    t.equal(shown(state.get()), want, `${name} ${answer}`);
  }
}

const answers = (entries: Record<string, Answer>): TableNamer => new TableNamer(new Map(Object.entries(entries)));

t.test('bound trees: alternation, union, neg, fail, empty (NameTreeTest eval cases)', async (t) => {
  const interp = new NameInterpreter({ namers: [new TableNamer()] });
  // Each case: the destination of /s, written with /#/t/<name> leaves that bind.
  const cases: [string, string][] = [
    ['~', '~'],
    ['/#/t/ok', '/#/t/ok'],
    ['/#/t/ok & /#/t/ok1', '/#/t/ok & /#/t/ok1'],
    ['/#/t/ok & ~ & /#/t/blah & $', '/#/t/ok & /#/t/blah & $'],
    ['$ & $ & $', '$ & $ & $'],
    ['~ & ~ & (~ | ~)', '~'],
    ['~ | /#/t/foo | /#/t/bar', '/#/t/foo'],
    ['~ | $ | /#/t/blah', '$'],
    ['~ | (~ | $) | /#/t/blah', '$'],
    ['(~|$|/#/t/foo) & (/#/t/bar|/#/t/blah) & ~ & /#/t/FOO', '$ & /#/t/bar & /#/t/FOO'],
    ['! | /#/t/ok', '!'],
    ['/#/t/ok & !', '/#/t/ok'],
    ['! & ! & !', '~'],
    ['~ | /#/t/ok | !', '/#/t/ok'],
    // NamerTest: an alternation with fail or empty.
    ['(! | /#/t/1 | /#/t/2)', '!'],
    ['(~ | /$/fail | /#/t/1)', '!'],
    ['(/$/nil | /$/fail | /#/t/1)', '$'],
    ['2 * /#/t/a & 3 * (/#/t/b & /#/t/c)', '2.00*/#/t/a & 3.00*(/#/t/b & /#/t/c)'],
  ];
  for (const [dst, want] of cases) t.equal(bindNow(interp, `/s=>${dst}`, '/s'), want, dst);
});

t.test('a union binds to the members that bound while others wait or fail (NamerTest union)', async (t) => {
  const namer = answers({ t0: 'pending', t1: 'pending', t2: 'pending' });
  const interp = new NameInterpreter({ namers: [namer] });
  // /a is bound to another tree (/#/t/t2), /#/t/t1 directly.
  const b = interp.bind(Dtab.read('/s=>/a & /#/t/t1;/a=>/#/t/t2'), parsePath('/s'));
  await walk(t, namer, b.state, [
    ['t2', 'pending', 'pending'],
    ['t1', 'bound', '/#/t/t1'],
    ['t1', 'failed', 'failed BINDING_FAILED: table: t1 broke'],
    ['t2', 'bound', '/#/t/t2'],
    ['t1', 'bound', '/#/t/t2 & /#/t/t1'],
    ['t2', 'neg', '/#/t/t1'],
    ['t2', 'failed', '/#/t/t1'],
    ['t1', 'failed', 'failed BINDING_FAILED: table: t2 broke'],
    ['t1', 'neg', '~'],
    ['t2', 'neg', '~'],
  ]);
  b.close();
});

t.test('failover: an alternation waits for its first member, then falls through neg (NamerTest failover)', async (t) => {
  const namer = answers({ t0: 'pending', t1: 'pending', t2: 'pending' });
  const interp = new NameInterpreter({ namers: [namer] });
  const b = interp.bind(Dtab.read('/s=>/#/t/t0 | /#/t/t1 & /#/t/t2'), parsePath('/s'));
  await walk(t, namer, b.state, [
    ['t1', 'neg', 'pending'],
    ['t2', 'neg', 'pending'],
    ['t0', 'neg', '~'],
    ['t2', 'bound', '/#/t/t2'],
    ['t0', 'bound', '/#/t/t0'],
    ['t2', 'pending', '/#/t/t0'],
  ]);
  b.close();
});

t.test('an alternative after one that decides is not evaluated: a wait, a failure or a loop there changes nothing', async (t) => {
  const namer = answers({ p: 'pending', x: 'failed', n: 'neg' });
  const interp = new NameInterpreter({ namers: [namer] });
  const cases: [string, string, string][] = [
    ['/s=>/#/t/ok | /#/t/p', '/s', '/#/t/ok'],
    ['/s=>/#/t/p | /#/t/ok', '/s', 'pending'],
    ['/s=>/#/t/ok | /#/t/x', '/s', '/#/t/ok'],
    ['/s=>/#/t/x | /#/t/ok', '/s', 'failed BINDING_FAILED: table: x broke'],
    ['/s=>/#/t/n | /#/t/x', '/s', 'failed BINDING_FAILED: table: x broke'],
    ['/s=>/#/t/ok | /loop;/loop=>/loop/x', '/s', '/#/t/ok'],
    ['/s=>/#/t/p;/s=>/#/t/ok', '/s', '/#/t/ok'],
    ['/s=>/#/t/ok & /#/t/p', '/s', '/#/t/ok'],
    ['/s=>/#/t/n & /#/t/p', '/s', '~'],
    ['/s=>/#/t/x & /#/t/p', '/s', 'failed BINDING_FAILED: table: x broke'],
    ['/s=>/#/t/p & /#/t/p', '/s', 'pending'],
    ['/s=>(/#/t/x & /#/t/x) | /#/t/ok', '/s', 'failed BINDING_FAILED: table: x broke'],
    ['/s=>/#/t/ok & /loop;/loop=>/loop/x', '/s', '/#/t/ok'],
  ];
  for (const [dtab, path, want] of cases) t.equal(bindNow(interp, dtab, path), want, dtab);
  t.match(bindNow(interp, '/s=>/#/t/n | /loop;/loop=>/loop/x', '/s'), /^failed DELEGATION_LOOP: delegation loop/);
  t.match(bindNow(interp, '/s=>/loop & /loop/y;/loop=>/loop/x', '/s'), /^failed DELEGATION_LOOP: delegation loop/);
});

t.test('dtab evaluation order and indirection (DefaultInterpreterTest)', async (t) => {
  const interp = new NameInterpreter({ namers: [new TableNamer()] });
  const d1 = '/foo=>/bar';
  const d2 = '/foo=>/biz;/biz=>/$/inet/8080;/bar=>/$/inet/9090';
  const cases: [string, string, string][] = [
    ['/foo=>/$/inet/8080', '/foo', '/$/inet/8080'],
    ['/foo=>/bar;/bar=>/$/inet/8080', '/foo', '/$/inet/8080'],
    [`${d1};${d2}`, '/foo', '/$/inet/8080'],
    [`${d2};${d1}`, '/foo', '/$/inet/9090'],
    [
      '/foo=>/bar;/foo=>3 * /baz & 2 * /booz & /#/t/namer;/baz=>3 * /$/inet/8080 & 2 * /$/inet/9090;/booz=>~',
      '/foo',
      '3.00*(3.00*/$/inet/8080 & 2.00*/$/inet/9090) & /#/t/namer',
    ],
  ];
  for (const [dtab, path, want] of cases) t.equal(bindNow(interp, dtab, path), want, dtab);
});

t.test('the built-in /$ names (Namer.global)', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  const cases: [string, string][] = [
    ['/$/inet/1234', '/$/inet/1234'],
    ['/$/inet/127.0.0.1/1234', '/$/inet/127.0.0.1/1234'],
    ['/$/inet/1234/foobar', '/$/inet/1234/foobar'],
    ['/$/inet/127.0.0.1/1234/foo/bar', '/$/inet/127.0.0.1/1234/foo/bar'],
    ['/$/inet/8080/9090', '/$/inet/8080/9090'],
    ['/$/fixedinet/1234', '/$/fixedinet/1234'],
    ['/$/fixedinet/127.0.0.1/1234/foobar', '/$/fixedinet/127.0.0.1/1234/foobar'],
    ['/$/fail', '!'],
    ['/$/fail/foo/bar', '!'],
    ['/$/nil', '$'],
    ['/$/nil/foo/bar', '$'],
    ['/foo/bar/bah/blah', '~'],
    ['/$', '~'],
  ];
  for (const [path, want] of cases) t.equal(bindNow(interp, '', path), want, path);
  for (const path of ['/$/inet', '/$/fixedinet', '/$/inet/host/http', '/$/com.twitter.finagle.TestNamer/foo']) {
    t.match(bindNow(interp, '', path), /^failed BINDING_FAILED: /, `${path} is an error`);
  }
  // The bound id is the address; the rest of the path is the residual.
  const b = interp.bind(Dtab.empty, parsePath('/$/inet/1234/foobar'));
  const s = b.state.get();
  t.match(s, { kind: 'ok', tree: { kind: 'leaf' } });
  if (s.kind === 'ok' && s.tree.kind === 'leaf') {
    t.equal(s.tree.value.id.show(), '/$/inet/1234');
    t.equal(s.tree.value.residual.show(), '/foobar');
  }
  b.close();
});

t.test('the dtab is consulted before the namers and the built-in names', async (t) => {
  const interp = new NameInterpreter({ namers: [new TableNamer()] });
  const cases: [string, string, string][] = [
    ['/$/inet/1.2.3.4=>/#/t/moved', '/$/inet/1.2.3.4/80', '/#/t/moved/80'],
    ['/$=>/#/t', '/$/x', '/#/t/x'],
    ['/$/fail=>/$/nil', '/$/fail', '$'],
    ['/#/t/a=>/#/t/b', '/#/t/a/rest', '/#/t/b/rest'],
    // A lookup that gives exactly neg is no lookup: the namers are asked (Finagle's lookup falls through on Neg).
    ['/#/t=>~', '/#/t/a', '/#/t/a'],
    ['/$/inet=>~', '/$/inet/1.2.3.4/80', '/$/inet/1.2.3.4/80'],
    ['/#/t=>~ | ~', '/#/t/a', '~'],
    ['/#/t=>~;/#/t=>~', '/#/t/a', '~'],
    ['/#/nowhere=>/#/t/c', '/#/nowhere/x', '/#/t/c/x'],
  ];
  for (const [dtab, path, want] of cases) t.equal(bindNow(interp, dtab, path), want, `${dtab} @ ${path}`);
  t.match(bindNow(interp, '/*=>/#/t/a', '/$/inet/80'), /^failed DELEGATION_LOOP/, 'a wildcard matches /$ and /# paths too');
});

t.test('the depth limit: 100 bindings deep, as Finagle counts them', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  const chain = (n: number): string => `${Array.from({ length: n }, (_, i) => `/p${i}=>/p${i + 1}`).join(';')};/p${n}=>/$/inet/80`;
  t.equal(bindNow(interp, chain(98), '/p0'), '/$/inet/80', '98 dentries and the address');
  t.match(bindNow(interp, chain(99), '/p0'), /^failed DELEGATION_LOOP: delegation loop: binding \/\$\/inet\/80 exceeded 100 steps/);
  t.match(bindNow(interp, '/s=>/s/srv', '/s/foo/bar'), /^failed DELEGATION_LOOP/);
  t.match(bindNow(interp, '/foo/bar=>/bar/foo;/bar/foo=>/foo/bar', '/foo/bar'), /^failed DELEGATION_LOOP/);
});
