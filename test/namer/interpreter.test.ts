// Binding through dtabs and namers with Finagle's semantics, table-driven, with a fake namer
// whose answers the test controls, plus the delegation tree's shape.

import t from 'tap';
import { Dtab } from '../../src/dtab/dtab.js';
import { NEG, type NameTree } from '../../src/dtab/name-tree.js';
import { Path } from '../../src/dtab/path.js';
import { parsePath } from '../../src/dtab/parse.js';
import type { Addr, BoundName, Lookup, Namer } from '../../src/namer/addr.js';
import { boundTree, delegateJson, showBound } from '../../src/namer/delegate-tree.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { Var } from '../../src/namer/var.js';

/** A namer at /#/fake: names listed in `known` bind, others are neg; `pending` ones wait. */
class FakeNamer implements Namer {
  readonly kind = 'fake';
  readonly prefix = Path.of('fake');
  readonly vars = new Map<string, Var<Lookup>>();
  constructor(
    readonly known: Set<string>,
    readonly pending = new Set<string>(),
  ) {}
  lookup(path: Path): Var<Lookup> {
    const name = path.elems[0] ?? '';
    let v = this.vars.get(name);
    if (!v) {
      v = new Var<Lookup>(this.state(name, path));
      this.vars.set(name, v);
    }
    return v;
  }
  state(name: string, path: Path): Lookup {
    if (this.pending.has(name)) return { kind: 'pending' };
    if (!this.known.has(name)) return { kind: 'ok', tree: NEG };
    const addr = new Var<Addr>({ kind: 'bound', endpoints: [{ host: '10.0.0.1', port: 80, meta: {} }] });
    const bound: BoundName = { id: new Path(['#', 'fake', name]), residual: path.drop(1), addr };
    return { kind: 'ok', tree: { kind: 'leaf', value: bound } };
  }
}

function bindNow(interp: NameInterpreter, dtab: string, path: string): Lookup {
  const b = interp.bind(Dtab.read(dtab), parsePath(path));
  const s = b.state.get();
  b.close();
  return s;
}

function shown(l: Lookup): string {
  if (l.kind === 'ok') return showBound(l.tree);
  return l.kind === 'failed' ? `failed: ${l.error.message}` : 'pending';
}

t.test('binding semantics (alt falls through neg, stops on fail; union drops neg/fail)', async (t) => {
  const interp = new NameInterpreter({ namers: [new FakeNamer(new Set(['a', 'b']))] });
  const cases: [string, string, string][] = [
    ['/svc=>/#/fake', '/svc/a', '/#/fake/a'],
    ['/svc=>/#/fake', '/svc/zzz', '~'],
    ['/svc=>/#/fake/zzz | /#/fake/b', '/svc', '/#/fake/b'],
    ['/svc=>! | /#/fake/b', '/svc', '!'],
    ['/svc=>$ | /#/fake/b', '/svc', '$'],
    ['/svc=>/#/fake/a & /#/fake/zzz & !', '/svc', '/#/fake/a'],
    ['/svc=>0.2*/#/fake/a & 0.8*/#/fake/b', '/svc', '0.20*/#/fake/a & 0.80*/#/fake/b'],
    ['/svc=>/#/fake/a;/svc/b=>/#/fake/b', '/svc/b', '/#/fake/b'],
    ['/svc=>/#/fake;/svc/zzz=>/#/fake/nope', '/svc/zzz', '~'],
    ['/svc=>/#/fake;/svc/a=>/#/fake/nope', '/svc/a', '/#/fake/a'],
    ['/s/*/x=>/#/fake/a', '/s/any/x', '/#/fake/a'],
    ['/svc=>/$/inet/127.0.0.1/8080', '/svc/extra', '/$/inet/127.0.0.1/8080/extra'],
    ['/svc=>/$/inet/8080', '/svc', '/$/inet/8080'],
    ['/svc=>/$/fail', '/svc', '!'],
    ['/svc=>/$/nil', '/svc', '$'],
    ['/svc=>/$/io.buoyant.rinet/9090', '/svc/web', '/$/io.buoyant.rinet/9090/web'],
    ['/svc=>/$/io.buoyant.hostportPfx/h', '/svc/web:81', '~'],
    ['/svc=>/$/io.buoyant.hostportPfx/inet;/inet=>/$/inet', '/svc/web:81/x', '/$/inet/web/81/x'],
    ['/svc=>/$/io.buoyant.porthostPfx/p;/p/81=>/#/fake/a', '/svc/web:81', '/#/fake/a'],
    ['/svc=>/$/io.buoyant.http.domainToPathPfx/d;/d/com/example=>/#/fake/b', '/svc/www.example.com', '/#/fake/b'],
    ['', '/nothing', '~'],
  ];
  for (const [dtab, path, want] of cases) t.equal(shown(bindNow(interp, dtab, path)), want, `${dtab} @ ${path}`);
});

t.test('unknown /$ namers and loops fail with a clear error', async (t) => {
  const interp = new NameInterpreter({ namers: [] });
  t.match(shown(bindNow(interp, '/svc=>/$/nope', '/svc')), /failed: unknown built-in namer \/\$\/nope/);
  const loop = bindNow(interp, '/a=>/b;/b=>/a', '/a');
  t.equal(loop.kind, 'failed');
  t.match(shown(loop), /delegation loop: binding .* exceeded 100 steps/);
});

t.test('a binding follows namer changes, and pending resolves', async (t) => {
  const fake = new FakeNamer(new Set(), new Set(['late']));
  const interp = new NameInterpreter({ namers: [fake] });
  const b = interp.bind(Dtab.read('/svc=>/#/fake'), parsePath('/svc/late'));
  t.equal(b.state.get().kind, 'pending');
  const seen: string[] = [];
  b.state.subscribe((s) => seen.push(shown(s)));
  fake.known.add('late');
  fake.pending.delete('late');
  (fake.vars.get('late') as Var<Lookup>).set(fake.state('late', Path.of('late')));
  await new Promise((r) => setTimeout(r, 0));
  t.equal(shown(b.state.get()), '/#/fake/late');
  (fake.vars.get('late') as Var<Lookup>).set({ kind: 'ok', tree: NEG });
  await new Promise((r) => setTimeout(r, 0));
  t.equal(shown(b.state.get()), '~');
  t.same(seen, ['pending', '/#/fake/late', '~']);
  b.close();
  t.equal((fake.vars.get('late') as Var<Lookup>).observerCount, 0, 'closing releases namer subscriptions');
});

t.test('the delegation tree records each step with its dentry (Linkerd 1 shape)', async (t) => {
  const interp = new NameInterpreter({ namers: [new FakeNamer(new Set(['world']))] });
  const tree = await interp.delegate(Dtab.read('/srv=>/#/fake;/host=>/srv;/svc=>/host'), parsePath('/svc/world'));
  const json = delegateJson(tree) as Record<string, unknown>;
  t.match(json, {
    type: 'delegate',
    path: '/svc/world',
    dentry: null,
    delegate: {
      type: 'delegate',
      path: '/host/world',
      dentry: { prefix: '/svc', dst: '/host' },
      delegate: {
        type: 'delegate',
        path: '/srv/world',
        dentry: { prefix: '/host', dst: '/srv' },
        delegate: {
          type: 'leaf',
          path: '/#/fake/world',
          dentry: { prefix: '/srv', dst: '/#/fake' },
          bound: { id: '/#/fake/world', path: '/', addr: { type: 'bound', addrs: [{ ip: '10.0.0.1', port: 80 }] } },
        },
      },
    },
  });
  const alt = delegateJson(await interp.delegate(Dtab.read('/svc=>/#/fake;/svc=>/#/fake/nope'), parsePath('/svc/world'))) as {
    type: string;
    alt: { type: string }[];
  };
  t.equal(alt.type, 'alt');
  t.same(
    alt.alt.map((c) => c.type),
    ['neg', 'leaf'],
  );
  const bound: NameTree<BoundName> = boundTree(tree);
  t.equal(bound.kind, 'leaf');
});

t.test("the delegation tree's JSON is simplified as Linkerd 1's delegator (DelegateApiHandlerTest)", async (t) => {
  const failing: Namer = {
    kind: 'error',
    prefix: Path.of('error'),
    lookup: (p) => new Var<Lookup>({ kind: 'failed', error: new Error(`error naming /#/error${p.show()}`) }),
  };
  const interp = new NameInterpreter({ namers: [failing] });
  const dtab = Dtab.read(
    '/beh => /#/error ; /bah/humbug => /$/inet/127.1/8080 ; /foo => /bah | /beh | /$/fail ; /foo => /bar ; /boo => /foo ; /meh => /heh ; /neg => ~ ;',
  );
  const json = async (p: string): Promise<unknown> => delegateJson(await interp.delegate(dtab, parsePath(p)));
  const viaFoo = { prefix: '/foo', dst: '/bah | /beh | /$/fail' };
  // The alternation /foo's second dentry made is spliced into the one the two /foo dentries make.
  t.match(await json('/boo/humbug'), {
    type: 'delegate',
    path: '/boo/humbug',
    delegate: {
      type: 'alt',
      path: '/foo/humbug',
      dentry: { prefix: '/boo', dst: '/foo' },
      alt: [
        { type: 'neg', path: '/bar/humbug', dentry: { prefix: '/foo', dst: '/bar' } },
        {
          type: 'delegate',
          path: '/bah/humbug',
          dentry: viaFoo,
          delegate: {
            type: 'leaf',
            path: '/$/inet/127.1/8080',
            dentry: { prefix: '/bah/humbug', dst: '/$/inet/127.1/8080' },
            bound: { addr: { type: 'bound', addrs: [{ port: 8080, meta: {} }], meta: {} }, id: '/$/inet/127.1/8080', path: '/' },
          },
        },
        {
          type: 'delegate',
          path: '/beh/humbug',
          dentry: viaFoo,
          delegate: { type: 'exception', path: '/#/error/humbug', dentry: { prefix: '/beh', dst: '/#/error' }, message: /error naming \/#\/error\/humbug/ },
        },
        { type: 'fail', path: '/$/fail/humbug', dentry: viaFoo },
      ],
    },
  });
  t.equal(((await json('/boo/humbug')) as { delegate: { alt: unknown[] } }).delegate.alt.length, 4, 'four alternatives, not three and a nested one');
  t.match(await json('/meh'), { type: 'delegate', path: '/meh', delegate: { type: 'neg', path: '/heh', dentry: { prefix: '/meh', dst: '/heh' } } });
  t.match(await json('/neg'), { type: 'delegate', path: '/neg', delegate: { type: 'neg', path: '~', dentry: { prefix: '/neg', dst: '~' } } });
  // A union a dentry made stands at the path it rewrote, with that step's dentry.
  const u = delegateJson(await interp.delegate(Dtab.read('/s=>/$/inet/1 & /$/inet/2'), parsePath('/s'))) as Record<string, unknown>;
  t.match(u, {
    type: 'union',
    path: '/s',
    dentry: null,
    union: [
      { weight: 1, tree: { type: 'leaf' } },
      { weight: 1, tree: { type: 'leaf' } },
    ],
  });
});
