// Deadlines (router/deadline.ts) on an injected clock: Finagle's l5d-ctx-deadline wire format, the
// strictest combination, the effective deadline against totalTimeoutMs, and which timer fires.

import { EventEmitter } from 'node:events';
import t from 'tap';
import { AttemptTimer, effectiveDeadline, expiredError, formatDeadline, parseDeadline } from '../../src/router/deadline.js';
import { ManualClock } from '../helpers/manual-clock.js';

const ms = (n: number): string => `${BigInt(n) * 1_000_000n}`;

t.test('wire format: "<timestamp ns> <deadline ns>", both epoch nanoseconds', async (t) => {
  t.same(parseDeadline(`${ms(1_700_000_000_000)} ${ms(1_700_000_000_250)}`), { timestamp: 1_700_000_000_000, deadline: 1_700_000_000_250 });
  t.equal(formatDeadline({ timestamp: 1_700_000_000_000, deadline: 1_700_000_000_250 }), '1700000000000000000 1700000000250000000');
  t.same(parseDeadline(formatDeadline({ timestamp: 5, deadline: 9 })), { timestamp: 5, deadline: 9 }, 'round trip');
  // Sub-millisecond parts are dropped (the router's clock is in ms).
  t.same(parseDeadline('1999999 2999999'), { timestamp: 1, deadline: 2 });
});

t.test('bad values are ignored, as Linkerd 1 ignores them; several combine the strictest way', async (t) => {
  for (const bad of ['', 'soon', '123', '1 2 3', '1.5 2', `${'9'.repeat(25)} 1`, '0x10 0x20']) {
    t.equal(parseDeadline(bad), undefined, JSON.stringify(bad));
  }
  t.equal(parseDeadline(undefined), undefined);
  // Repeated fields, or one joined with commas: the latest timestamp, the earliest deadline.
  t.same(parseDeadline([`${ms(10)} ${ms(500)}`, `${ms(20)} ${ms(300)}`]), { timestamp: 20, deadline: 300 });
  t.same(parseDeadline(`${ms(10)} ${ms(500)}, garbage, ${ms(5)} ${ms(900)}`), { timestamp: 10, deadline: 500 });
});

t.test('the effective deadline is the earliest of the caller and totalTimeoutMs', async (t) => {
  const now = 1_000_000;
  t.equal(effectiveDeadline(now, undefined, undefined), undefined, 'nothing bounds the request');
  t.same(effectiveDeadline(now, undefined, 500), { at: now + 500, source: 'total', wire: { timestamp: now, deadline: now + 500 } });
  const header = `${ms(now - 50)} ${ms(now + 100)}`;
  t.same(effectiveDeadline(now, header, 500), { at: now + 100, source: 'header', wire: { timestamp: now, deadline: now + 100 } }, "the caller's is sooner");
  t.same(effectiveDeadline(now, header, 40), { at: now + 40, source: 'total', wire: { timestamp: now, deadline: now + 40 } }, "the router's is sooner");
  t.same(effectiveDeadline(now, 'nonsense', 40)?.source, 'total', 'a bad header leaves the router its own');
  const past = effectiveDeadline(now, `${ms(now - 500)} ${ms(now - 200)}`, 1000);
  t.ok(past !== undefined && past.at <= now, 'a deadline already past stays past (never extended by totalTimeoutMs)');
  t.match(expiredError(past as NonNullable<typeof past>, now), { code: 'TIMEOUT', status: 503, message: /l5d-ctx-deadline.*200 ms ago: not forwarded/ });
});

t.test('attempt timer: the attempt timeout when it is sooner, else the deadline; each fires exactly when due', async (t) => {
  const clock = new ManualClock(0);
  const abort = new EventEmitter();
  const deadline = effectiveDeadline(clock.now(), undefined, 10_000);
  const timer = new AttemptTimer({ clock, deadline, attemptTimeoutMs: 30, abort });
  t.ok(timer.bounded);
  let fired = 0;
  let signal = timer.start();
  signal.once('abort', () => fired++);
  await clock.advance(29);
  t.equal(fired, 0, 'the attempt is not aborted 1 ms before its timeout');
  t.equal(timer.expired, undefined);
  await clock.advance(1);
  t.equal(fired, 1, 'the attempt is aborted at its timeout, not later');
  t.equal(timer.expired, 'attempt', 'the attempt timed out; the request has time left');
  t.match(timer.error(), { code: 'TIMEOUT', message: /requestAttemptTimeoutMs 30 ms/ });
  // The request's deadline is 20 ms away at 9,980: that is what the next attempt gets, not 30 ms.
  await clock.advance(9_980 - clock.now());
  fired = 0;
  signal = timer.start();
  signal.once('abort', () => fired++);
  t.equal(timer.expired, undefined, 'a new attempt starts clean');
  await clock.advance(19);
  t.equal(fired, 0, 'not aborted 1 ms before the deadline');
  await clock.advance(1);
  t.equal(fired, 1, 'aborted at the deadline');
  t.equal(timer.expired, 'deadline');
  t.match(timer.error(), { code: 'TIMEOUT', message: /totalTimeoutMs 10000 ms/ });
  await clock.advance(1);
  t.ok(timer.remaining() < 0);
  t.equal(clock.pending, 0, 'a fired timer leaves nothing scheduled');
});

t.test('attempt timer: stop() disarms, so an answered attempt is never aborted later, however late', async (t) => {
  const clock = new ManualClock(0);
  const abort = new EventEmitter();
  const quiet = new AttemptTimer({ clock, deadline: effectiveDeadline(0, undefined, 10_000), attemptTimeoutMs: 20, abort });
  let fired = false;
  quiet.start().once('abort', () => (fired = true));
  t.equal(clock.pending, 1, 'the attempt armed one timer');
  quiet.stop();
  t.equal(clock.pending, 0, 'stop() cancelled it');
  // A restarted attempt cancels the previous attempt's timer: only one is ever armed.
  quiet.start();
  quiet.start();
  t.equal(clock.pending, 1, 'one timer for the current attempt');
  quiet.stop();
  // Past the attempt timeout and the request deadline both: a timer left armed would have fired.
  await clock.advance(20_000);
  t.notOk(fired, 'no abort after stop()');
  t.equal(quiet.expired, undefined);
});

t.test("the client's own abort reaches the attempt; unbounded requests use the request's signal", async (t) => {
  const abort = new EventEmitter();
  const timer = new AttemptTimer({ clock: new ManualClock(0), deadline: effectiveDeadline(0, undefined, 60_000), attemptTimeoutMs: undefined, abort });
  const signal = timer.start();
  let seen = false;
  signal.once('abort', () => (seen = true));
  abort.emit('abort');
  t.ok(seen);
  t.equal(timer.expired, undefined, 'not a timeout');
  timer.stop();
  t.equal(abort.listenerCount('abort'), 0, 'no listener left on the request');
  const open = new AttemptTimer({ clock: new ManualClock(0), deadline: undefined, attemptTimeoutMs: undefined, abort });
  t.notOk(open.bounded);
  t.equal(open.start(), abort);
  t.equal(open.remaining(), Number.POSITIVE_INFINITY);
});
