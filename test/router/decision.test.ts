// The entry decision is the one way into a router: only EntryDecider makes one, and a router
// refuses anything else, whatever its shape (router/decision.ts).

import t from 'tap';
import { assertDecided, EntryDecider, EntryDecision } from '../../src/router/decision.js';

const facts = { direction: 'outbound', entry: 'http1', source: undefined, peerId: undefined, headers: {} } as const;

t.test('a decision made by the decider passes the router’s check', async (t) => {
  const d = new EntryDecider(undefined).decide(facts);
  t.notOk(d instanceof Promise, 'no callers: decided at once');
  t.doesNotThrow(() => assertDecided(d as EntryDecision));
  t.equal((d as EntryDecision).direction, 'outbound');
});

t.test('anything else is refused: a literal of the same shape, an object of its prototype, a copy, undefined', async (t) => {
  const real = new EntryDecider(undefined).decide(facts) as EntryDecision;
  const forged = [
    { direction: 'outbound', entry: 'http1', caller: undefined, clientId: undefined, claim: undefined },
    Object.create(EntryDecision.prototype) as object,
    { ...real },
    Object.assign(Object.create(EntryDecision.prototype) as object, real),
  ];
  for (const f of forged) t.throws(() => assertDecided(f as EntryDecision), /without an entry decision/);
  t.throws(() => assertDecided(undefined), /without an entry decision/);
});
