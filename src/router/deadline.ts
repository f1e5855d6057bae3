// Request deadlines (issue 18): Linkerd 1's service.totalTimeoutMs and client.requestAttemptTimeoutMs,
// and Finagle's l5d-ctx-deadline context read on arrival, combined, enforced and propagated.

import { AbortEvent, type AbortEvents } from '../core/abort.js';
import type { Cancel, Clock } from '../core/clock.js';
import { HostmeshError } from '../errors.js';

/** Finagle's deadline context on the wire: `<timestamp ns> <deadline ns>` (epoch nanoseconds). */
export const DEADLINE_HEADER = 'l5d-ctx-deadline';

/**
 * The longest delay Node's timers take (2^31 - 1 ms, 24.8 days): a longer one is not honoured but
 * fires at once with a TimeoutOverflowWarning on stderr. A deadline further away than this is no
 * deadline at all (Finagle's Time.Top, Long.MaxValue nanoseconds, is how a caller says "none").
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay that Node's timers honour: at most MAX_TIMER_MS, never negative or NaN. */
export function timerMs(ms: number): number {
  return ms > 0 ? Math.min(ms, MAX_TIMER_MS) : 0;
}

/** A deadline as Finagle keeps it, in epoch milliseconds: when it was set, and when it passes. */
export interface Deadline {
  readonly timestamp: number;
  readonly deadline: number;
}

const NS_PER_MS = 1_000_000n;
// Epoch nanoseconds fit in 19 digits until 2262; longer values are not Finagle's.
const NANOS = /^\s*(-?\d{1,19})\s+(-?\d{1,19})\s*$/;

/** One header value, or undefined when it is not `<ns> <ns>` (a bad value is ignored, as Linkerd 1 does). */
function readOne(text: string): Deadline | undefined {
  const m = NANOS.exec(text);
  if (m === null) return undefined;
  const timestamp = Number(BigInt(m[1] as string) / NS_PER_MS);
  const deadline = Number(BigInt(m[2] as string) / NS_PER_MS);
  return { timestamp, deadline };
}

/**
 * The l5d-ctx-deadline a request carries. Several values (repeated fields, or one field joined
 * with commas) are combined the strictest way, as Finagle's Deadline.combined: the latest
 * timestamp and the earliest deadline.
 */
export function parseDeadline(value: string | string[] | undefined): Deadline | undefined {
  if (value === undefined) return undefined;
  let out: Deadline | undefined;
  for (const line of Array.isArray(value) ? value : [value]) {
    for (const part of line.split(',')) {
      const d = readOne(part);
      if (d === undefined) continue;
      out = out === undefined ? d : { timestamp: Math.max(out.timestamp, d.timestamp), deadline: Math.min(out.deadline, d.deadline) };
    }
  }
  return out;
}

/** The header value for a deadline (what the next hop reads). */
export function formatDeadline(d: Deadline): string {
  return `${BigInt(Math.trunc(d.timestamp)) * NS_PER_MS} ${BigInt(Math.trunc(d.deadline)) * NS_PER_MS}`;
}

/** Where a request's deadline came from (the metric tells an operator whose limit fired). */
export type DeadlineSource = 'header' | 'total';

/** A request's effective deadline: the earliest of the caller's l5d-ctx-deadline and totalTimeoutMs. */
export interface RequestDeadline {
  /** Epoch ms (on the router's clock). */
  readonly at: number;
  readonly source: DeadlineSource;
  /** What is propagated to the next hop. */
  readonly wire: Deadline;
}

/**
 * The effective deadline of a request that arrives at `now` with `header` (its l5d-ctx-deadline
 * field), under the router's totalTimeoutMs; undefined when neither bounds it. A caller's deadline
 * more than MAX_TIMER_MS away (Finagle's Time.Top among them) means no deadline: it is neither
 * enforced nor sent on.
 */
export function effectiveDeadline(now: number, header: string | string[] | undefined, totalTimeoutMs: number | undefined): RequestDeadline | undefined {
  const parsed = parseDeadline(header);
  const theirs = parsed !== undefined && parsed.deadline - now > MAX_TIMER_MS ? undefined : parsed;
  const ours = totalTimeoutMs === undefined ? undefined : now + totalTimeoutMs;
  if (theirs === undefined && ours === undefined) return undefined;
  if (theirs === undefined || (ours !== undefined && ours < theirs.deadline)) {
    const at = ours as number;
    return { at, source: 'total', wire: { timestamp: now, deadline: at } };
  }
  return { at: theirs.deadline, source: 'header', wire: { timestamp: Math.max(now, theirs.timestamp), deadline: theirs.deadline } };
}

/** The 503 for a request whose deadline passed before it could be forwarded (never sent on). */
export function expiredError(d: RequestDeadline, now: number): HostmeshError {
  const what = d.source === 'header' ? 'the request deadline (l5d-ctx-deadline)' : 'the total timeout (service.totalTimeoutMs)';
  return new HostmeshError('TIMEOUT', `${what} passed ${Math.max(0, now - d.at)} ms ago: not forwarded`);
}

/** Which deadline ended an attempt: the request's (the end) or the attempt's own (may be retried). */
export type Expiry = 'deadline' | 'attempt';

export interface AttemptTimerOptions {
  /** The timers are armed on it and the time left is read from it (tests drive it). */
  readonly clock: Clock;
  readonly deadline: RequestDeadline | undefined;
  /** client.requestAttemptTimeoutMs (undefined: attempts are bounded by the deadline only). */
  readonly attemptTimeoutMs: number | undefined;
  /** The request's own abort (the client went away): forwarded to every attempt's signal. */
  readonly abort: AbortEvents;
}

/**
 * The timers of one request's attempts. Each attempt gets its own abort signal (core/abort.ts), fired when the client leaves, when the attempt's timeout passes, or when the
 * request's deadline does, whichever is first: aborting it cancels the upstream request, so the
 * next hop sees its request go away. Which one fired is kept so the router can tell a retryable
 * attempt timeout from the end of the request. The time left and the timer both come from the
 * injected clock, so a manual clock fires an attempt's timeout exactly when it is due.
 */
export class AttemptTimer {
  readonly #o: AttemptTimerOptions;
  #cancel: Cancel | undefined;
  #forward: (() => void) | undefined;
  /** Set when a timer fired during the current attempt. */
  expired: Expiry | undefined;

  constructor(options: AttemptTimerOptions) {
    this.#o = options;
  }

  /** Whether anything bounds this request's attempts (else start() hands back the request's own signal). */
  get bounded(): boolean {
    return this.#o.deadline !== undefined || this.#o.attemptTimeoutMs !== undefined;
  }

  /** Milliseconds left before the request's deadline (Infinity without one). */
  remaining(): number {
    return this.#o.deadline === undefined ? Number.POSITIVE_INFINITY : this.#o.deadline.at - this.#o.clock.now();
  }

  /** The error a fired timer (or a deadline already passed) makes. */
  error(): HostmeshError {
    const d = this.#o.deadline;
    if (this.expired === 'attempt')
      return new HostmeshError('TIMEOUT', `no answer within the attempt timeout (client.requestAttemptTimeoutMs ${this.#o.attemptTimeoutMs} ms)`);
    if (d?.source === 'header') return new HostmeshError('TIMEOUT', 'no answer before the request deadline (l5d-ctx-deadline)');
    return new HostmeshError('TIMEOUT', `no answer within the total timeout (service.totalTimeoutMs ${d === undefined ? '?' : d.at - d.wire.timestamp} ms)`);
  }

  /** Arms the timer of a new attempt and returns the attempt's abort signal. */
  start(): AbortEvents {
    this.stop();
    this.expired = undefined;
    if (!this.bounded) return this.#o.abort;
    const signal = new AbortEvent();
    this.#forward = () => signal.emit('abort');
    this.#o.abort.once('abort', this.#forward);
    const left = this.remaining();
    const attempt = this.#o.attemptTimeoutMs ?? Number.POSITIVE_INFINITY;
    const kind: Expiry = attempt < left ? 'attempt' : 'deadline';
    const ms = Math.max(0, Math.min(attempt, left));
    // Only reachable when the injected clock and the real one disagree by weeks: no timer then
    // rather than one Node would fire at once.
    if (ms > MAX_TIMER_MS) return signal;
    this.#cancel = this.#o.clock.schedule(ms, () => {
      this.#cancel = undefined;
      this.expired = kind;
      signal.emit('abort');
    });
    return signal;
  }

  /** The attempt's answer arrived (or it failed): its timer no longer applies. */
  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    if (this.#forward !== undefined) this.#o.abort.off('abort', this.#forward);
    this.#forward = undefined;
  }
}
