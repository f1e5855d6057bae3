// Admission control on its own: shares per source and per service, the bounded queue, the wait
// bound on an injected schedule, withdrawal of gone clients, and waiters admitted past blocked ones.

import { EventEmitter } from 'node:events';
import t from 'tap';
import { Admission, ShedError, type AdmissionLimits } from '../../../../src/router/stages/endpoint/admission.js';
import { ManualClock } from '../../../helpers/manual-clock.js';

const LIMITS: AdmissionLimits = { maxInFlight: 4, maxWaiters: 4, maxWaitersPerSource: 2, maxWaitMs: 1000, maxPerSource: 2, maxPerService: 3 };

/** Settles a possibly-pending acquire into 'admitted' | 'waiting' | the shed reason. */
async function state(p: Promise<void> | undefined): Promise<string> {
  if (p === undefined) return 'admitted';
  const tick = new Promise<string>((r) => setImmediate(() => r('waiting')));
  return Promise.race([
    p.then(
      () => 'admitted',
      (e: unknown) => (e instanceof ShedError ? e.reason : String(e)),
    ),
    tick,
  ]);
}

t.test('a source gets its share, not the pool; others get the rest at once', async (t) => {
  const a = new Admission(LIMITS, new ManualClock());
  t.equal(await state(a.acquire('pod-1', '/svc/x')), 'admitted');
  t.equal(await state(a.acquire('pod-1', '/svc/y')), 'admitted');
  const third = a.acquire('pod-1', '/svc/z');
  t.equal(await state(third), 'waiting', 'the source is at its share');
  t.equal(await state(a.acquire('pod-2', '/svc/z')), 'admitted', 'another source is not behind it');
  t.equal(a.inFlight, 3);
  a.release('pod-1', '/svc/x');
  t.equal(await state(third), 'admitted', 'a released slot goes to the waiter');
});

t.test('a service gets its share across sources; no source (incoming side) has only that', async (t) => {
  const a = new Admission(LIMITS, new ManualClock());
  for (let i = 0; i < 3; i++) t.equal(await state(a.acquire(undefined, '/svc/hot')), 'admitted');
  t.equal(await state(a.acquire(undefined, '/svc/hot')), 'waiting', 'the service is at its share');
  t.equal(await state(a.acquire(undefined, '/svc/cold')), 'admitted', 'another service still gets a slot');
});

t.test('the queue is bounded overall and per source: past it, shed at once', async (t) => {
  const clock = new ManualClock();
  const a = new Admission(LIMITS, clock);
  a.acquire('p1', '/a');
  a.acquire('p1', '/b');
  a.acquire('p2', '/c');
  a.acquire('p2', '/d'); // pool full (4)
  const w = [a.acquire('p3', '/e'), a.acquire('p3', '/f')];
  t.equal(await state(a.acquire('p3', '/g')), 'source_queue_full', 'one source has at most half the queue');
  w.push(a.acquire('p4', '/h'), a.acquire('p5', '/i'));
  t.equal(a.waiting, 4);
  t.equal(await state(a.acquire('p6', '/j')), 'queue_full');
  await clock.advance(LIMITS.maxWaitMs - 1);
  for (const p of w) t.equal(await state(p), 'waiting', 'a waiter is still queued 1 ms before the wait bound');
  await clock.advance(1);
  for (const p of w) t.equal(await state(p), 'wait_timeout', 'waiters are shed at the wait bound');
  t.equal(a.waiting, 0);
  t.equal(clock.pending, 0);
});

t.test('release admits the oldest waiter that fits, past ones still blocked by their share', async (t) => {
  const a = new Admission(LIMITS, new ManualClock());
  a.acquire('p1', '/a');
  a.acquire('p1', '/b');
  a.acquire('p2', '/c');
  a.acquire('p3', '/d'); // full
  const blocked = a.acquire('p1', '/e'); // p1 at its share even when a slot frees
  const fits = a.acquire('p4', '/f');
  a.release('p2', '/c');
  t.equal(await state(fits), 'admitted');
  t.equal(await state(blocked), 'waiting');
  a.release('p1', '/a');
  t.equal(await state(blocked), 'admitted');
});

t.test('a client gone while waiting leaves the queue at once', async (t) => {
  const clock = new ManualClock();
  const a = new Admission({ ...LIMITS, maxPerSource: 1 }, clock);
  a.acquire('p1', '/a');
  const abort = new EventEmitter();
  const waiting = a.acquire('p1', '/b', abort);
  t.equal(a.waiting, 1);
  abort.emit('abort');
  t.match(await state(waiting), /went away/);
  t.equal(a.waiting, 0);
  t.equal(clock.pending, 0, 'its wait timer is cancelled');
  t.equal(abort.listenerCount('abort'), 0);
});

t.test('counts return to zero and per-key state is bounded: 64 idle keys a map, plus what is present', async (t) => {
  const a = new Admission(LIMITS, new ManualClock());
  let waited = 0;
  for (let i = 0; i < 1000; i++) {
    if (a.acquire(`pod-${i}`, `/svc/${i}`) !== undefined) waited++;
    a.release(`pod-${i}`, `/svc/${i}`);
  }
  t.equal(waited, 0, 'each was admitted at once');
  t.equal(a.inFlight, 0);
  t.equal(a.waiting, 0);
  t.ok(a.keysHeld <= 2 * 64, `idle keys kept: ${a.keysHeld}`);
  // Many keys present at once, then all released: back under the bound.
  const big = new Admission({ ...LIMITS, maxInFlight: 10_000, maxPerService: 10_000, maxPerSource: 10_000 }, new ManualClock());
  let queued = 0;
  for (let i = 0; i < 5000; i++) if (big.acquire(`pod-${i}`, `/svc/${i % 700}`) !== undefined) queued++;
  t.equal(queued, 0);
  t.equal(big.keysHeld, 5000 + 700, 'one count per source and per service present');
  for (let i = 0; i < 5000; i++) big.release(`pod-${i}`, `/svc/${i % 700}`);
  t.ok(big.keysHeld <= 2 * 64, `after: ${big.keysHeld}`);
  // A key kept at zero still counts from zero: its share is whole again.
  t.equal(await state(a.acquire('pod-0', '/svc/0')), 'admitted');
  t.equal(await state(a.acquire('pod-0', '/svc/0')), 'admitted');
  t.equal(await state(a.acquire('pod-0', '/svc/0')), 'waiting', "pod-0's share (2) is full again, not more");
});
