// Admission against a plain model of its rules, on random sequences of arrivals, releases, gone
// clients and passing time: who is admitted at once, who waits, who is shed and why, and which
// waiters each release admits, in order. The model scans the whole queue on every release, as
// admission did before it learned to stop once no waiter left can fit (issue 28).

import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import t from 'tap';
import { Admission, type AdmissionLimits, ShedError } from '../../../../src/router/stages/endpoint/admission.js';
import { ManualClock } from '../../../helpers/manual-clock.js';

const LIMITS: AdmissionLimits = { maxInFlight: 4, maxWaiters: 6, maxWaitersPerSource: 4, maxWaitMs: 100, maxPerSource: 2, maxPerService: 3 };

interface ModelWaiter {
  readonly id: number;
  readonly source: string | undefined;
  readonly service: string;
  readonly until: number;
}

/** The rules, written plainly: shares, a bounded queue, and on release every waiter that fits, oldest first. */
class Model {
  inFlight = 0;
  readonly bySource = new Map<string, number>();
  readonly byService = new Map<string, number>();
  readonly waiters: ModelWaiter[] = [];
  readonly log: string[] = [];

  fits(source: string | undefined, service: string): boolean {
    if (this.inFlight >= LIMITS.maxInFlight) return false;
    if (source !== undefined && (this.bySource.get(source) ?? 0) >= LIMITS.maxPerSource) return false;
    return (this.byService.get(service) ?? 0) < LIMITS.maxPerService;
  }

  take(source: string | undefined, service: string): void {
    this.inFlight++;
    if (source !== undefined) this.bySource.set(source, (this.bySource.get(source) ?? 0) + 1);
    this.byService.set(service, (this.byService.get(service) ?? 0) + 1);
  }

  acquire(id: number, source: string | undefined, service: string, now: number): void {
    if (this.fits(source, service)) {
      this.take(source, service);
      this.log.push(`${id} admitted`);
    } else if (this.waiters.length >= LIMITS.maxWaiters) this.log.push(`${id} queue_full`);
    else if (source !== undefined && this.waiters.filter((w) => w.source === source).length >= LIMITS.maxWaitersPerSource)
      this.log.push(`${id} source_queue_full`);
    else this.waiters.push({ id, source, service, until: now + LIMITS.maxWaitMs });
  }

  release(source: string | undefined, service: string): void {
    this.inFlight--;
    if (source !== undefined) this.bySource.set(source, (this.bySource.get(source) ?? 0) - 1);
    this.byService.set(service, (this.byService.get(service) ?? 0) - 1);
    for (let i = 0; i < this.waiters.length && this.inFlight < LIMITS.maxInFlight; ) {
      const w = this.waiters[i] as ModelWaiter;
      if (!this.fits(w.source, w.service)) {
        i++;
        continue;
      }
      this.waiters.splice(i, 1);
      this.take(w.source, w.service);
      this.log.push(`${w.id} admitted`);
    }
  }

  gone(id: number): void {
    const i = this.waiters.findIndex((w) => w.id === id);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    this.log.push(`${id} gone`);
  }

  timeUntil(now: number): void {
    for (const w of this.waiters.filter((w) => w.until <= now).sort((a, b) => a.until - b.until)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      this.log.push(`${w.id} wait_timeout`);
    }
  }
}

const source = fc.constantFrom(undefined, 'pod-a', 'pod-b', 'pod-c');
const service = fc.constantFrom('/svc/x', '/svc/y');
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('acquire' as const), source, service }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gone' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('time' as const), ms: fc.integer({ min: 1, max: 120 }) }) },
);

t.test('admission decides as the plain model does, release after release', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 120, size: 'max' }), async (ops) => {
      const clock = new ManualClock();
      const a = new Admission(LIMITS, clock);
      const model = new Model();
      const log: string[] = [];
      /** Admitted and not released yet, with their keys; waiting ones with their abort emitters. */
      const held: { id: number; source: string | undefined; service: string }[] = [];
      const waiting = new Map<number, EventEmitter>();
      const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
      let id = 0;
      let now = 0;
      for (const o of ops) {
        if (o.kind === 'acquire') {
          const me = { id: id++, source: o.source, service: o.service };
          const abort = new EventEmitter();
          const p = a.acquire(me.source, me.service, abort);
          model.acquire(me.id, me.source, me.service, now);
          if (p === undefined) {
            log.push(`${me.id} admitted`);
            held.push(me);
          } else {
            waiting.set(me.id, abort);
            p.then(
              () => {
                log.push(`${me.id} admitted`);
                held.push(me);
                waiting.delete(me.id);
              },
              (e: unknown) => {
                log.push(`${me.id} ${e instanceof ShedError ? e.reason : 'gone'}`);
                waiting.delete(me.id);
              },
            );
          }
        } else if (o.kind === 'release') {
          if (held.length === 0) continue;
          const [h] = held.splice(o.pick % held.length, 1);
          if (h === undefined) continue;
          a.release(h.source, h.service);
          model.release(h.source, h.service);
        } else if (o.kind === 'gone') {
          const ids = [...waiting.keys()];
          if (ids.length === 0) continue;
          const gone = ids[o.pick % ids.length] as number;
          waiting.get(gone)?.emit('abort');
          model.gone(gone);
        } else {
          now += o.ms;
          await clock.advance(o.ms);
          model.timeUntil(now);
        }
        await flush();
        if (log.join('\n') !== model.log.join('\n') || a.inFlight !== model.inFlight || a.waiting !== model.waiters.length) {
          t.same(log, model.log, 'the same decisions in the same order');
          t.equal(a.inFlight, model.inFlight);
          t.equal(a.waiting, model.waiters.length);
          return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('one busy source behind its share: each release admits its next waiter and stops', async (t) => {
  // The bench's shape: one pod (wrk) with far more connections than its share of the pool.
  const limits: AdmissionLimits = { maxInFlight: 64, maxWaiters: 1024, maxWaitersPerSource: 512, maxWaitMs: 1000, maxPerSource: 32, maxPerService: 48 };
  const a = new Admission(limits, new ManualClock());
  const admitted: number[] = [];
  for (let i = 0; i < 32; i++) t.equal(a.acquire('pod', '/svc/web'), undefined);
  for (let i = 0; i < 200; i++) void a.acquire('pod', '/svc/web')?.then(() => admitted.push(i));
  t.equal(a.waiting, 200);
  for (let i = 0; i < 100; i++) a.release('pod', '/svc/web');
  await new Promise((r) => setImmediate(r));
  t.same(admitted, [...Array(100).keys()], 'the oldest waiters, one per release, in order');
  t.equal(a.inFlight, 32, 'the source keeps exactly its share');
  t.equal(a.waiting, 100);
});

t.test('a release still admits the one waiter that fits behind the waiters of a full source', async (t) => {
  const a = new Admission(LIMITS, new ManualClock());
  // The pool full: pod-a at its share on /svc/x, pod-b twice on /svc/y.
  for (const [source, service] of [
    ['pod-a', '/svc/x'],
    ['pod-a', '/svc/x'],
    ['pod-b', '/svc/y'],
    ['pod-b', '/svc/y'],
  ] as const)
    t.equal(a.acquire(source, service), undefined);
  const admitted: string[] = [];
  void a.acquire('pod-a', '/svc/x')?.then(() => admitted.push('a1'));
  void a.acquire('pod-a', '/svc/x')?.then(() => admitted.push('a2'));
  void a.acquire('pod-c', '/svc/y')?.then(() => admitted.push('c'));
  a.release('pod-b', '/svc/y');
  await new Promise((r) => setImmediate(r));
  t.same(admitted, ['c'], 'pod-a is at its share; pod-c, last in the queue, fits');
  t.equal(a.waiting, 2);
});
