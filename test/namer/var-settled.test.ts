// settled(): the one way to wait on a Var: the first non-pending state, and no subscription left
// behind (a namer would otherwise keep the entry observed, and so alive, for good).

import t from 'tap';
import { settled, Var } from '../../src/namer/var.js';

type State = { kind: 'pending' } | { kind: 'bound'; n: number };

t.test('resolves with the first settled state and lets go of the Var', async (t) => {
  const v = new Var<State>({ kind: 'pending' });
  const p = settled(v, 10_000);
  t.equal(v.observerCount, 1, 'observed while waiting');
  v.set({ kind: 'bound', n: 1 });
  v.set({ kind: 'bound', n: 2 });
  t.same(await p, { kind: 'bound', n: 1 });
  t.equal(v.observerCount, 0, 'the subscription is gone once settled');
});

t.test('an already settled Var answers at once', async (t) => {
  const v = new Var<State>({ kind: 'bound', n: 7 });
  t.same(await settled(v, 10_000), { kind: 'bound', n: 7 });
  t.equal(v.observerCount, 0);
});
