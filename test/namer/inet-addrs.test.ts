// The /$/inet address map alone: addresses are shared while named, dropped once not named for
// idleTtl (the injected clock), capped at maxNames least recently named first, and a host label
// no DNS name or IP literal could be is never kept. Explanations through the interpreter leave the
// map bounded the same way.

import { clockWithNow } from '../../src/core/clock.js';
import t from 'tap';
import fc from 'fast-check';
import { InetAddrs, INET_MAX_NAMES } from '../../src/namer/builtins.js';
import { NameInterpreter } from '../../src/namer/interpreter.js';
import { Dtab } from '../../src/dtab/dtab.js';
import { Path } from '../../src/dtab/path.js';

t.test('shared while named, dropped after idleTtl, re-made when named again', async (t) => {
  let clock = 1000;
  const inet = new InetAddrs({ idleTtlMs: 60_000, clock: clockWithNow(() => clock) });
  const a = inet.get('10.0.0.1', 80);
  t.equal(inet.get('10.0.0.1', 80), a, 'the same address shares one Var');
  t.same(a.get(), { kind: 'bound', endpoints: [{ host: '10.0.0.1', port: 80, meta: {} }] });
  clock += 59_999;
  t.equal(inet.evictIdle(), 0, 'named within idleTtl: kept');
  t.equal(inet.get('10.0.0.1', 80), a, 'naming it again refreshes it');
  clock += 60_000;
  t.equal(inet.evictIdle(), 1, 'dropped once idle');
  t.equal(inet.size, 0);
  t.equal(inet.evictions, 1);
  t.same(a.get(), { kind: 'bound', endpoints: [{ host: '10.0.0.1', port: 80, meta: {} }] }, 'a holder keeps a working Var');
  t.not(inet.get('10.0.0.1', 80), a, 'named again: a new Var');
});

t.test('maxNames: the least recently named goes first; 0 keeps nothing', async (t) => {
  const inet = new InetAddrs({ maxNames: 3, clock: clockWithNow(() => 0) });
  const first = inet.get('h0', 1);
  inet.get('h1', 1);
  inet.get('h2', 1);
  t.equal(inet.get('h0', 1), first, 'h0 named again: now the most recent');
  inet.get('h3', 1);
  t.equal(inet.size, 3);
  t.equal(inet.evictions, 1);
  t.equal(inet.get('h0', 1), first, 'h0 kept; h1 was the least recently named');
  const none = new InetAddrs({ maxNames: 0 });
  none.get('h', 1);
  t.equal(none.size, 0);
});

t.test('a host label longer than any DNS name is never kept', async (t) => {
  const inet = new InetAddrs();
  const v = inet.get('x'.repeat(256), 80);
  t.equal(v.get().kind, 'bound');
  t.equal(inet.size, 0);
});

t.test('property: size never passes maxNames, and every Var says the address it was asked for', async () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20 }),
      fc.array(fc.tuple(fc.string({ maxLength: 300 }), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 100_000 })), { maxLength: 200 }),
      (max, calls) => {
        let clock = 0;
        const inet = new InetAddrs({ maxNames: max, idleTtlMs: 50_000, clock: clockWithNow(() => clock) });
        for (const [host, port, dt] of calls) {
          clock += dt;
          const a = inet.get(host, port).get();
          if (a.kind !== 'bound' || a.endpoints[0]?.host !== host || a.endpoints[0]?.port !== port) return false;
          if (inet.size > max) return false;
        }
        return true;
      },
    ),
  );
});

t.test('10,000 explanations of distinct /$/inet addresses leave at most maxNames, none once idle', async (t) => {
  let clock = 0;
  const interpreter = new NameInterpreter({ namers: [], inet: { clock: clockWithNow(() => clock) } });
  for (let i = 0; i < 10_000; i++) {
    const dtab = Dtab.read(`/svc/web => /$/inet/10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/${1 + (i % 60_000)}`);
    interpreter.explain(dtab, Path.of('svc', 'web'));
  }
  t.equal(interpreter.inetStats().entries, INET_MAX_NAMES, 'capped');
  t.equal(interpreter.inetStats().evictions, 10_000 - INET_MAX_NAMES, 'the rest counted as evicted');
  clock += 60_000;
  interpreter.evictIdle();
  t.equal(interpreter.inetStats().entries, 0, 'none once idle');
});
