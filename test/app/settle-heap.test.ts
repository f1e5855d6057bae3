// Start-up's garbage collected once (src/app/settle-heap.ts): the collection returns the young
// generation start-up grew (what an idle router's RSS is made of until V8's memory reducer gets
// to it), it runs once at the set time on the clock, and a router stopped before then skips it.

import { getHeapSpaceStatistics } from 'node:v8';
import t from 'tap';
import { collectAndShrink, QUIET_CPU_MS, SETTLE_AFTER_MS, settleAfterStart } from '../../src/app/settle-heap.js';
import { ManualClock } from '../helpers/manual-clock.js';

const youngMb = (): number => (getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 1048576;

t.test('the collection shrinks a young generation that start-up-like allocation grew', async (t) => {
  // Objects that survive a few scavenges each, as modules, config and first lists do at start.
  let keep: { i: number; s: string }[] = [];
  for (let i = 0; i < 400_000; i++) {
    keep.push({ i, s: `x${i}` });
    if (keep.length > 50_000) keep = keep.slice(10_000);
  }
  keep = [];
  const before = youngMb();
  t.ok(before >= 4, `the young generation grew (${before} MB)`);
  t.equal(await collectAndShrink(), true, 'collected through the in-process inspector');
  const after = youngMb();
  t.ok(after <= 2, `and is back to its floor (${before} -> ${after} MB)`);
});

t.test('runs once, at the set time when the second after it is quiet, and reports the heap before and after', async (t) => {
  const clock = new ManualClock();
  let calls = 0;
  const reports: { ok: boolean; heapBefore: number; heapAfter: number }[] = [];
  settleAfterStart(
    clock,
    (r) => reports.push(r),
    SETTLE_AFTER_MS,
    async () => (calls++, true),
    () => 0, // an idle process: no CPU used
  );
  await clock.advance(SETTLE_AFTER_MS);
  t.equal(calls, 0, 'not before the time and its quiet second');
  await clock.advance(1000);
  t.equal(calls, 1, 'after a quiet second');
  await clock.advance(10 * SETTLE_AFTER_MS);
  t.equal(calls, 1, 'once only');
  t.equal(reports.length, 1);
  t.equal(reports[0]?.ok, true);
  t.ok((reports[0]?.heapBefore ?? 0) > 0 && (reports[0]?.heapAfter ?? 0) > 0, 'heap figures reported');
});

t.test('a router busy serving is not paused: it looks again later and collects in its first quiet second', async (t) => {
  const clock = new ManualClock();
  let calls = 0;
  let cpu = 0;
  // The process uses 200 ms of CPU a second (a router serving ~2,000 req/s) until `busy` is false.
  let busy = true;
  const cpuMs = (): number => cpu + (busy ? clock.now() / 5 : 0);
  settleAfterStart(
    clock,
    () => undefined,
    SETTLE_AFTER_MS,
    async () => (calls++, true),
    cpuMs,
  );
  for (let i = 0; i < 5; i++) await clock.advance(SETTLE_AFTER_MS + 1000);
  t.equal(calls, 0, 'never while busy');
  busy = false;
  cpu = clock.now() / 5; // what it used, kept; from now on an idle process
  await clock.advance(SETTLE_AFTER_MS + 1000);
  t.equal(calls, 1, 'at the first quiet second after the traffic stopped');
  await clock.advance(10 * SETTLE_AFTER_MS);
  t.equal(calls, 1, 'once only');
});

t.test('a second at the quiet threshold is busy', async (t) => {
  const clock = new ManualClock();
  let calls = 0;
  let cpu = 0;
  settleAfterStart(
    clock,
    () => undefined,
    1000,
    async () => (calls++, true),
    () => cpu,
  );
  await clock.advance(1000); // the window opens
  cpu += QUIET_CPU_MS;
  await clock.advance(1000);
  t.equal(calls, 0, `${QUIET_CPU_MS} ms of CPU in the second: busy`);
  await clock.advance(1000); // looks again 1,000 ms later: a window opens
  cpu += QUIET_CPU_MS - 1;
  await clock.advance(1000);
  t.equal(calls, 1, 'under it: quiet');
});

t.test('a router stopped before the time, or during its quiet second, skips it', async (t) => {
  const clock = new ManualClock();
  let calls = 0;
  const cancel = settleAfterStart(
    clock,
    () => undefined,
    1000,
    async () => (calls++, true),
    () => 0,
  );
  cancel();
  await clock.advance(5000);
  t.equal(calls, 0, 'stopped before the time');
  const during = settleAfterStart(
    clock,
    () => undefined,
    1000,
    async () => (calls++, true),
    () => 0,
  );
  await clock.advance(1500); // inside the quiet second
  during();
  await clock.advance(5000);
  t.equal(calls, 0, 'stopped inside the quiet second');
});
