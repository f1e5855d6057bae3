// What the name interpreter holds per live binding (issue 28: a router binding 1,000 names holds
// 1,000 of them), and the observation contract its leaner shape rests on (Var.observe/unobserve).

import t from 'tap';
import { Dtab } from '../../src/dtab/dtab.js';
import { Path } from '../../src/dtab/path.js';
import { parsePath } from '../../src/dtab/parse.js';
import type { Addr, BoundName, Lookup, Namer } from '../../src/namer/addr.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { Var } from '../../src/namer/var.js';
import { liveObjects } from '../helpers/live-objects.js';

/** A namer at /#/fake binding every name, one Var per name (made up front by `prepare`). */
class FakeNamer implements Namer {
  readonly kind = 'fake';
  readonly prefix = Path.of('fake');
  readonly vars = new Map<string, Var<Lookup>>();
  lookup(path: Path): Var<Lookup> {
    const name = path.elems[0] ?? '';
    let v = this.vars.get(name);
    if (v === undefined) {
      const addr = new Var<Addr>({ kind: 'bound', endpoints: [{ host: '10.0.0.1', port: 80, meta: {} }] });
      const bound: BoundName = { id: new Path(['#', 'fake', name]), residual: path.drop(1), addr };
      v = new Var<Lookup>({ kind: 'ok', tree: { kind: 'leaf', value: bound } });
      this.vars.set(name, v);
    }
    return v;
  }
}

t.test('a live binding holds two functions, whatever it watches (with closures: six and more)', async (t) => {
  const fake = new FakeNamer();
  const interp = new NameInterpreter({ namers: [fake] });
  const dtab = Dtab.read('/svc => /#/fake;');
  const N = 500;
  for (let i = 0; i < N; i++) fake.lookup(parsePath(`/s${i}`)); // the namer's own state is not counted
  interp.bind(dtab, parsePath('/svc/warm')).close();
  const before = liveObjects(Function.prototype);
  const handles = Array.from({ length: N }, (_, i) => interp.bind(dtab, parsePath(`/svc/s${i}`)));
  const per = (liveObjects(Function.prototype) - before) / N;
  t.equal(interp.bindingCount, N);
  t.ok(
    handles.every((h) => h.state.get().kind === 'ok'),
    'every name bound',
  );
  t.ok(per < 2.5, `${per} functions per binding`);
  for (const h of handles) h.close();
  t.equal(interp.bindingCount, 0);
  t.equal(interp.lookupCount, 0, 'closing the last handles lets go of the lookups');
  t.ok(
    [...fake.vars.values()].every((v) => v.observerCount === 0),
    'and of every namer subscription',
  );
});

t.test('a binding shared by two handles lives until both close; a lookup change re-evaluates it', async (t) => {
  const fake = new FakeNamer();
  const interp = new NameInterpreter({ namers: [fake] });
  const dtab = Dtab.read('/svc => /#/fake;');
  const a = interp.bind(dtab, parsePath('/svc/x'));
  const b = interp.bind(Dtab.read('/svc => /#/fake;'), parsePath('/svc/x'));
  t.equal(a.state, b.state, 'one binding for equal dtabs and paths');
  t.equal(interp.bindingCount, 1);
  const other = interp.bind(dtab, parsePath('/svc/x'), { budget: 50 });
  t.not(other.state, a.state, 'a router with its own budget binds on its own');
  other.close();
  const v = fake.vars.get('x') as Var<Lookup>;
  t.equal(v.observerCount, 1, 'one observer for the lookup');
  v.set({ kind: 'ok', tree: { kind: 'neg' } });
  await Promise.resolve();
  t.same(a.state.get(), { kind: 'ok', tree: { kind: 'neg' } }, 'the change re-evaluated the binding');
  a.close();
  a.close(); // twice: once
  t.equal(interp.bindingCount, 1, 'still held by the other handle');
  b.close();
  t.equal(interp.bindingCount, 0);
  t.equal(v.observerCount, 0);
});

t.test('Var.observe: told of changes from now on, not now; the observation hooks run as for subscribe', async (t) => {
  const hooks: string[] = [];
  const v = new Var(1, { onObserved: () => hooks.push('observed'), onUnobserved: () => hooks.push('unobserved') });
  const seen: number[] = [];
  const o = (n: number): void => {
    seen.push(n);
  };
  v.observe(o);
  v.observe(o); // once
  t.same(seen, [], 'not called at once');
  v.set(2);
  const off = v.subscribe(() => undefined);
  v.unobserve(o);
  v.set(3);
  t.same(seen, [2], 'called on the change, not after unobserve');
  t.same(hooks, ['observed'], 'observed once, still observed by the subscriber');
  off();
  t.same(hooks, ['observed', 'unobserved']);
  v.unobserve(o); // not observing: nothing
  t.same(hooks, ['observed', 'unobserved']);
  const derived = Var.map(v, (n) => n * 10);
  const got: number[] = [];
  derived.observe((n) => got.push(n));
  v.set(4);
  t.same(got, [40], 'a derived Var follows its source while observed');
  t.equal(v.observerCount, 1);
});
