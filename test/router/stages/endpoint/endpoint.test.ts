// The endpoint stage alone (stages/endpoint/endpoint.ts): a Lease is the endpoint's load from creation, admit
// waits for a slot or sheds (tiny limits, an injected clock), and release gives back slot and probe once.

import { clockWithNow } from '../../../../src/core/clock.js';
import { EventEmitter } from 'node:events';
import t from 'tap';
import { HostmeshError } from '../../../../src/errors.js';
import type { Endpoint } from '../../../../src/namer/addr.js';
import type { ShedReason } from '../../../../src/router/stages/endpoint/admission.js';
import { clientLimits, EndpointPools, endpointKey } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { accrualKey, FailureAccrual } from '../../../../src/router/stages/concrete/failure-accrual.js';
import { EndpointStage } from '../../../../src/router/stages/endpoint/endpoint.js';
import { ManualClock } from '../../../helpers/manual-clock.js';

const E: Endpoint = { host: '127.0.0.1', port: 9, meta: {} };
const CLIENT = '/#/t/web';

interface Harness {
  stage: EndpointStage;
  pools: EndpointPools;
  accrual: FailureAccrual;
  shed: ShedReason[];
  /** The pools' clock: admission's wait bounds run on it. */
  time: ManualClock;
  /** Failure accrual's clock. */
  clock: { now: number };
}

function harness(t: { teardown(fn: () => unknown): void }, maxSize: number, maxWaiters: number): Harness {
  const time = new ManualClock();
  const pools = new EndpointPools(undefined, {
    limits: clientLimits({ hostConnectionPool: { maxSize, maxWaiters }, maxWaitMs: 1_000 }),
    clock: time,
  });
  t.teardown(() => pools.close());
  const clock = { now: 0 };
  const accrual = new FailureAccrual(
    { policy: { kind: 'io.l5d.consecutiveFailures', failures: 1 }, backoff: { kind: 'constant', ms: 100 } },
    { clock: clockWithNow(() => clock.now) },
  );
  const shed: ShedReason[] = [];
  const stage = new EndpointStage({ pools, accrual, events: { shed: (r) => shed.push(r) } });
  return { stage, pools, accrual, shed, time, clock };
}

/** How a promise settled by now: 'pending', 'admitted', or the rejection's code and reason. */
/** How an admission ended; `undefined` is admit's answer for a slot free at once. */
async function settled(p: Promise<void> | undefined): Promise<string> {
  if (p === undefined) return 'admitted';
  let out = 'pending';
  p.then(
    () => (out = 'admitted'),
    (err: unknown) => (out = err instanceof HostmeshError ? `${err.code}${'reason' in err ? ` ${String(err.reason)}` : ''}` : String(err)),
  );
  await new Promise((r) => setImmediate(r));
  return out;
}

t.test("a lease counts in the endpoint's load from creation, before its slot; release is idempotent", async (t) => {
  const h = harness(t, 4, 4);
  t.equal(h.pools.load(E), 0);
  const a = h.stage.lease(E, CLIENT, '10.0.0.1', '/svc/web');
  t.equal(h.pools.load(E), 1, 'the balancer sees a request waiting for a slot as load');
  const b = h.stage.lease(E, CLIENT, '10.0.0.1', '/svc/web');
  t.equal(h.pools.load(E), 2);
  t.equal(a.entry, b.entry, 'one pool entry per endpoint');
  t.equal(a.entry.key, endpointKey(E));
  await a.admit(new EventEmitter());
  t.equal(a.entry.admission.inFlight, 1, 'admitted: one slot taken');
  a.release();
  a.release();
  a.release();
  t.equal(h.pools.load(E), 1, 'released once however often called');
  t.equal(a.entry.admission.inFlight, 0, 'its slot given back once');
  b.release();
  t.equal(h.pools.load(E), 0, 'a lease never admitted gives back its load only');
  t.equal(b.entry.admission.inFlight, 0);
});

t.test('admit waits for a slot, then sheds past the queue; the waiter is admitted when a slot frees', async (t) => {
  const h = harness(t, 1, 1);
  const abort = new EventEmitter();
  const first = h.stage.lease(E, CLIENT, '10.0.0.1', '/svc/web');
  t.equal(await settled(first.admit(abort)), 'admitted', 'a free slot admits at once');
  const second = h.stage.lease(E, CLIENT, '10.0.0.2', '/svc/web');
  const waiting = second.admit(abort);
  t.equal(await settled(waiting), 'pending', 'the only slot is taken: it waits');
  t.equal(second.entry.admission.waiting, 1);
  const third = h.stage.lease(E, CLIENT, '10.0.0.3', '/svc/web');
  t.equal(await settled(third.admit(abort)), 'SHED queue_full', 'the queue of one is full: shed at once');
  t.same(h.shed, ['queue_full'], 'counted by reason');
  third.release();
  t.equal(h.pools.load(E), 2, 'the shed lease gave back its load');
  first.release();
  t.equal(await settled(waiting), 'admitted', 'the released slot goes to the waiter');
  t.equal(second.entry.admission.inFlight, 1);
  await h.time.advance(1_000);
  t.same(h.shed, ['queue_full'], "the admitted waiter's wait bound is cancelled: nothing is shed when it would have passed");
  second.release();
  t.equal(second.entry.admission.inFlight, 0);
  t.equal(h.pools.load(E), 0);
});

t.test('a waiter past maxWaitMs is shed (wait_timeout); one whose client left is dropped from the queue', async (t) => {
  const h = harness(t, 1, 4);
  const holder = h.stage.lease(E, CLIENT, '10.0.0.1', '/svc/web');
  await holder.admit(new EventEmitter());
  const late = h.stage.lease(E, CLIENT, '10.0.0.2', '/svc/web');
  const p = late.admit(new EventEmitter());
  await h.time.advance(999);
  t.equal(await settled(p), 'pending', 'still waiting 1 ms before maxWaitMs');
  await h.time.advance(1);
  t.equal(await settled(p), 'SHED wait_timeout');
  t.same(h.shed, ['wait_timeout']);
  late.release();

  const gone = new EventEmitter();
  const leaving = h.stage.lease(E, CLIENT, '10.0.0.3', '/svc/web');
  const q = leaving.admit(gone);
  t.equal(leaving.entry.admission.waiting, 1);
  gone.emit('abort');
  t.equal(await settled(q), 'UPSTREAM_ERROR', 'the client went away while waiting');
  t.equal(leaving.entry.admission.waiting, 0, 'its queue place is free at once');
  t.same(h.shed, ['wait_timeout'], 'a client leaving is not a shed');
  leaving.release();
  holder.release();
  t.equal(holder.entry.admission.inFlight, 0);
  t.equal(h.pools.load(E), 0);
});

t.test("one source cannot take the whole queue (source_queue_full); others' places stay", async (t) => {
  const h = harness(t, 1, 2); // one waiter per source
  const holder = h.stage.lease(E, CLIENT, '10.0.0.1', '/svc/web');
  await holder.admit(new EventEmitter());
  const abort = new EventEmitter();
  const w1 = h.stage.lease(E, CLIENT, '10.0.0.9', '/svc/web');
  const p1 = w1.admit(abort);
  const w2 = h.stage.lease(E, CLIENT, '10.0.0.9', '/svc/web');
  t.equal(await settled(w2.admit(abort)), 'SHED source_queue_full');
  const other = h.stage.lease(E, CLIENT, '10.0.0.8', '/svc/web');
  const p3 = other.admit(abort);
  t.equal(await settled(p3), 'pending', 'another pod still gets a queue place');
  t.same(h.shed, ['source_queue_full']);
  w2.release();
  holder.release();
  t.equal(await settled(p1), 'admitted', 'oldest first');
  w1.release();
  t.equal(await settled(p3), 'admitted');
  other.release();
  t.equal(h.pools.load(E), 0);
});

t.test("a lease holding failure accrual's probe gives it back on release without an outcome, once", async (t) => {
  const h = harness(t, 4, 4);
  const key = accrualKey(CLIENT, endpointKey(E));
  h.accrual.record(key, false);
  t.equal(h.accrual.state(key), 'dead');
  h.clock.now = 100;
  t.equal(h.accrual.state(key), 'probing', 'after the backoff one probe may go');
  const probe = h.stage.lease(E, CLIENT, undefined, '/svc/web');
  t.notOk(h.accrual.usable(key), 'the probe is out: the balancer skips the endpoint');
  const other = h.stage.lease(E, CLIENT, undefined, '/svc/web'); // sent anyway (every endpoint dead)
  other.release();
  t.notOk(h.accrual.usable(key), "a lease that is not the probe does not give the probe's place back");
  probe.release();
  t.ok(h.accrual.usable(key), 'shed or abandoned without an outcome: the next request may probe');
  probe.release();
  const again = h.stage.lease(E, CLIENT, undefined, '/svc/web');
  t.notOk(h.accrual.usable(key), 'the next lease took the probe');
  again.record(true);
  again.release();
  t.equal(h.accrual.state(key), 'alive', 'a successful probe revives the endpoint');
  t.equal(h.accrual.deadCount, 0);

  // A probe that failed keeps the endpoint dead for the next backoff; release does not undo it.
  h.accrual.record(key, false);
  h.clock.now = 200;
  const failing = h.stage.lease(E, CLIENT, undefined, '/svc/web');
  failing.record(false);
  failing.release();
  t.equal(h.accrual.state(key), 'dead');
  t.notOk(h.accrual.usable(key));
  t.equal(h.pools.load(E), 0);
});
