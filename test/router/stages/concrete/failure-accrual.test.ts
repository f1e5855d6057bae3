// Failure accrual's policies and states on an injected clock (router/stages/concrete/failure-accrual.ts), the
// balancer's skipDead, and client.failureAccrual as the config loads it.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { clockWithNow } from '../../../../src/core/clock.js';
import t from 'tap';
import { ConfigError, parseConfig } from '../../../../src/config/load.js';
import { skipDead } from '../../../../src/router/stages/concrete/balancer.js';
import { accrualConfig, FailureAccrual, MAX_ACCRUAL_ENTRIES } from '../../../../src/router/stages/concrete/failure-accrual.js';
import { backoffDelays } from '../../../../src/router/stages/forward/retries.js';

t.test('consecutiveFailures: dead after N in a row, a success resets the run', async (t) => {
  let now = 0;
  const removed: number[] = [];
  const a = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 3 }, backoff: { kind: 'constant', ms: 1000 } },
    { clock: clockWithNow(() => now), onRemoved: () => removed.push(now) },
  );
  a.record('k', false);
  a.record('k', false);
  a.record('k', true);
  a.record('k', false);
  a.record('k', false);
  t.equal(a.state('k'), 'alive', 'the success broke the run');
  a.record('k', false);
  t.equal(a.state('k'), 'dead');
  t.equal(a.usable('k'), false);
  t.same(removed, [0]);
  t.equal(a.deadCount, 1);
  now = 999;
  t.equal(a.usable('k'), false, 'dead until the backoff has passed');
  now = 1000;
  t.equal(a.usable('k'), true, 'one probe may go');
  t.equal(a.begin('k'), true, 'this attempt is the probe');
  t.equal(a.usable('k'), false, 'while it is out, no other request goes');
  a.abandon('k');
  t.equal(a.usable('k'), true, 'a probe with no outcome (shed) lets the next one probe');
  a.begin('k');
  a.record('k', false);
  t.equal(a.state('k'), 'dead', 'a failed probe: dead again for the next backoff');
  t.equal(removed.length, 1, 'not a new removal');
  now = 2000;
  a.begin('k');
  a.record('k', true);
  t.equal(a.state('k'), 'alive', 'a successful probe revives it');
  t.equal(a.deadCount, 0);
  a.record('k', false);
  a.record('k', false);
  t.equal(a.state('k'), 'alive', 'its history starts afresh');
});

t.test('successRate: below the rate over the last N requests, once N were seen', async (t) => {
  const a = new FailureAccrual(
    { policy: { kind: 'io.l5d.successRate', successRate: 0.8, requests: 10 }, backoff: { kind: 'constant', ms: 1000 } },
    { clock: clockWithNow(() => 0) },
  );
  for (let i = 0; i < 8; i++) a.record('k', i % 2 === 0);
  t.equal(a.state('k'), 'alive', 'fewer than N requests: no verdict');
  const b = new FailureAccrual(
    { policy: { kind: 'io.l5d.successRate', successRate: 0.8, requests: 10 }, backoff: { kind: 'constant', ms: 1000 } },
    { clock: clockWithNow(() => 0) },
  );
  // 9 successes in 10 (0.9) and it stays; the window slides: 7 in 10 (0.7) and it is dead.
  for (let i = 0; i < 9; i++) b.record('k', true);
  b.record('k', false);
  t.equal(b.state('k'), 'alive');
  b.record('k', false);
  t.equal(b.state('k'), 'alive', '8 of 10');
  b.record('k', false);
  t.equal(b.state('k'), 'dead', '7 of 10');
});

t.test('successRateWindowed: the rate of the last window seconds, old outcomes forgotten', async (t) => {
  let now = 0;
  const a = new FailureAccrual(
    { policy: { kind: 'io.l5d.successRateWindowed', successRate: 0.5, windowMs: 5000 }, backoff: { kind: 'constant', ms: 1000 } },
    { clock: clockWithNow(() => now) },
  );
  for (let i = 0; i < 4; i++) a.record('k', false);
  t.equal(a.state('k'), 'alive', 'fewer than MIN_WINDOW_REQUESTS in the window');
  now = 10_000; // the failures are out of the window
  for (let i = 0; i < 3; i++) a.record('k', true);
  a.record('k', false);
  a.record('k', false);
  t.equal(a.state('k'), 'alive', '3 of 5 in this window');
  a.record('k', false);
  t.equal(a.state('k'), 'alive', '3 of 6 is the rate itself, not below it');
  a.record('k', false);
  t.equal(a.state('k'), 'dead', '3 of 7');
});

t.test('none never marks anything; state is bounded', async (t) => {
  const off = new FailureAccrual(accrualConfig({ kind: 'none' }));
  for (let i = 0; i < 100; i++) off.record('k', false);
  t.equal(off.state('k'), 'alive');
  t.equal(off.enabled, false);
  const a = new FailureAccrual(accrualConfig({ kind: 'io.l5d.consecutiveFailures', failures: 1 }), { clock: clockWithNow(() => 0) });
  for (let i = 0; i < MAX_ACCRUAL_ENTRIES + 500; i++) a.record(`e${i}`, false);
  t.equal(a.size, MAX_ACCRUAL_ENTRIES, 'entries capped');
  t.equal(a.deadCount, MAX_ACCRUAL_ENTRIES, 'the gauge follows what is kept');
});

t.test('config defaults are Linkerd 1 (5 failures, jittered 5 s..300 s)', async (t) => {
  t.same(accrualConfig(undefined), { policy: { kind: 'io.l5d.consecutiveFailures', failures: 5 }, backoff: { kind: 'jittered', minMs: 5000, maxMs: 300_000 } });
  t.same(accrualConfig({ kind: 'io.l5d.successRateWindowed', successRate: 0.9, window: 30, backoff: { kind: 'constant' } }), {
    policy: { kind: 'io.l5d.successRateWindowed', successRate: 0.9, windowMs: 30_000 },
    backoff: { kind: 'constant', ms: 0 },
  });
});

t.test('skipDead: the usable ones, or all when none is', async (t) => {
  const items = ['a', 'b', 'c'];
  t.equal(
    skipDead(items, () => true),
    items,
    'no copy when all are usable',
  );
  t.same(
    skipDead(items, (x) => x !== 'b'),
    ['a', 'c'],
  );
  t.same(
    skipDead(items, (x) => x === 'c'),
    ['c'],
  );
  t.equal(
    skipDead(items, () => false),
    items,
    'all dead: pick among all (Finagle)',
  );
});

function yaml(client: string): string {
  return `routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - port: 4140\n  client:\n    failureAccrual: ${client}\n`;
}

t.test('client.failureAccrual loads as Linkerd 1 writes it, enforced (no warning); mistakes are file:line:col errors', async (t) => {
  for (const [text, want] of [
    [
      '{kind: io.l5d.consecutiveFailures, failures: 7, backoff: {kind: jittered, minMs: 100, maxMs: 1000}}',
      { kind: 'io.l5d.consecutiveFailures', failures: 7, backoff: { kind: 'jittered', minMs: 100, maxMs: 1000 } },
    ],
    ['{kind: io.l5d.successRate, successRate: 0.9, requests: 1000}', { kind: 'io.l5d.successRate', successRate: 0.9, requests: 1000 }],
    [
      '{kind: io.l5d.successRateWindowed, successRate: 0.9, window: 30, backoff: {kind: constant, ms: 500}}',
      { kind: 'io.l5d.successRateWindowed', successRate: 0.9, window: 30, backoff: { kind: 'constant', ms: 500 } },
    ],
    ['{kind: none}', { kind: 'none' }],
  ] as const) {
    const { config, warnings } = parseConfig(yaml(text), 'l5d.yaml');
    t.same(config.routers[0]?.client.failureAccrual, want, text);
    t.same(warnings, [], 'no "accepted, not enforced"');
  }
  for (const [text, why] of [
    ['{kind: io.l5d.consecutiveFailures, failures: 0}', /failures/],
    ['{kind: io.l5d.successRate, successRate: 1.5, requests: 10}', /successRate/],
    ['{kind: io.l5d.successRate, successRate: 0.9}', /requests/],
    ['{kind: io.l5d.successRateWindowed, successRate: 0.9, window: 0}', /window/],
    ['{kind: io.l5d.consecutiveFailures, failure: 3}', /failure/],
    ['{kind: io.l5d.failFast}', /kind/],
    ['{kind: none, backoff: {kind: constant}}', /backoff/],
  ] as const) {
    let err: unknown;
    try {
      parseConfig(yaml(text), 'l5d.yaml');
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, text);
    t.match((err as Error).message, /l5d\.yaml:\d+:\d+/);
    t.match((err as Error).message, why);
  }
});

t.test('evictIdle: alive entries idle past the TTL go (10,000 distinct endpoints, then 0); dead ones stay', async (t) => {
  let now = 0;
  const a = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 2 }, backoff: { kind: 'constant', ms: 3_600_000 } },
    { clock: clockWithNow(() => now) },
  );
  for (let i = 0; i < 10_000; i++) a.record(`c|10.0.${i >> 8}.${i & 255}:80`, false); // one failure each: alive
  a.record('dead', false);
  a.record('dead', false);
  t.equal(a.state('dead'), 'dead');
  t.equal(a.size, MAX_ACCRUAL_ENTRIES, 'bounded while held');
  now = 500_000;
  a.record('recent', false);
  t.equal(a.evictIdle(600_000), 0, 'nothing is idle for the TTL yet');
  now = 600_000;
  t.equal(a.evictIdle(600_000), MAX_ACCRUAL_ENTRIES - 2, 'the idle alive entries are dropped (all but the dead and the recent one)');
  t.equal(a.size, 2, 'the dead endpoint and the recent one are kept');
  t.equal(a.state('dead'), 'dead', 'a dead endpoint stays dead');
  t.equal(a.deadCount, 1);
  a.record('recent', false);
  t.equal(a.state('recent'), 'dead', "the recent entry's run was kept");
});

t.test('policies through the public API match their definitions on any outcome sequence (fast-check)', async (t) => {
  // consecutiveFailures: dead at the first outcome that ends `failures` failures in a row;
  // successRate: at the first one after which the last `requests` outcomes are below the rate.
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 12 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.array(fc.boolean(), { maxLength: 60 }),
      (failures, requests, rate, outcomes) => {
        const backoff = { kind: 'constant', ms: 1000 } as const;
        const c = new FailureAccrual({ policy: { kind: 'io.l5d.consecutiveFailures', failures }, backoff }, { clock: clockWithNow(() => 0) });
        const r = new FailureAccrual({ policy: { kind: 'io.l5d.successRate', successRate: rate, requests }, backoff }, { clock: clockWithNow(() => 0) });
        let cDead = false;
        let rDead = false;
        for (let i = 0; i < outcomes.length; i++) {
          if (!cDead) c.record('k', outcomes[i] as boolean);
          if (!rDead) r.record('k', outcomes[i] as boolean);
          const run = outcomes
            .slice(0, i + 1)
            .reverse()
            .findIndex((ok) => ok);
          const wantC = (run < 0 ? i + 1 : run) >= failures;
          const last = outcomes.slice(Math.max(0, i + 1 - requests), i + 1);
          const wantR = i + 1 >= requests && last.filter((ok) => ok).length / requests < rate;
          if (!cDead && (c.state('k') === 'dead') !== wantC) return false;
          if (!rDead && (r.state('k') === 'dead') !== wantR) return false;
          cDead ||= wantC;
          rDead ||= wantR;
        }
        return true;
      },
    ),
    { numRuns: 300 },
  );
  t.pass('300 random sequences');
});

t.test("a dead endpoint's backoff is the jittered stream from its first marking, restarted after a revival", async (t) => {
  // The stream is made when an endpoint is first marked dead (not for every endpoint seen): the
  // delays must still be backoffDelays' sequence with the same random numbers.
  const config = { kind: 'jittered', minMs: 100, maxMs: 10_000 } as const;
  const randoms = [0.5, 0.9, 0.1, 0.7, 0.3, 0.6];
  const expect = (() => {
    const feed = [...randoms];
    const d = backoffDelays(config, () => feed.shift() ?? 0);
    return [d(), d(), d()];
  })();
  let now = 0;
  const feed = [...randoms];
  const a = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 1 }, backoff: config },
    { clock: clockWithNow(() => now), random: () => feed.shift() ?? 0 },
  );
  a.record('other', true); // alive, no memory
  const got: number[] = [];
  a.record('k', false);
  for (let i = 0; i < 3; i++) {
    const from = now;
    while (a.state('k') === 'dead') now++;
    got.push(now - from);
    a.begin('k');
    if (i < 2) a.record('k', false);
  }
  t.same(got, expect, 'dead for the stream delays in turn');
  a.record('k', true);
  t.equal(a.state('k'), 'alive', 'revived');
  const restart = (() => {
    const rest = randoms.slice(3);
    const d = backoffDelays(config, () => rest.shift() ?? 0);
    return d();
  })();
  a.record('k', false);
  const from = now;
  while (a.state('k') === 'dead') now++;
  t.equal(now - from, restart, 'a fresh stream after the revival');
});

t.test('5,000 endpoints with one failure each hold under 300 bytes of accrual state apiece (as closures: ~500)', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const keys = Array.from({ length: 5000 }, (_, i) => `#/io.l5d.k8s/default/http/svc-${i % 1000} 127.0.${i >> 8}.${i & 255}:8080`);
  const a = new FailureAccrual({ policy: { kind: 'io.l5d.consecutiveFailures', failures: 5 }, backoff: { kind: 'jittered', minMs: 5000, maxMs: 300_000 } });
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const k of keys) a.record(k, false);
  gc();
  gc();
  const per = (process.memoryUsage().heapUsed - before) / keys.length;
  t.equal(a.size, 5000);
  t.ok(per < 300, `${per.toFixed(0)} bytes per endpoint`);
});
