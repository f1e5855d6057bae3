// The abort signal of a forwarded request and of its attempts. The forward path hands one to
// every layer that must stop when the client leaves or a deadline passes (admission's queue, the
// attempt's dispatch, an HTTP/2 stream). It used to be an EventEmitter: cheaper than an
// AbortController, but its constructor still showed in the profiles of issue 28, once per request.
// This is the subset the router uses ('abort' only), with no set-up at all until a listener comes.

/** What the forward path calls on a signal: an EventEmitter has all of it too. */
export interface AbortEvents {
  on(event: 'abort', listener: () => void): unknown;
  once(event: 'abort', listener: () => void): unknown;
  off(event: 'abort', listener: () => void): unknown;
  emit(event: 'abort'): boolean;
}

/** A `once` registration: it removes itself when it runs, and runs at most once. */
interface Once {
  readonly fn: () => void;
  fired: boolean;
}

/**
 * An 'abort' event source with an EventEmitter's semantics for what the router does: listeners
 * run in the order they were added, on a copy of the list taken when the event is emitted (one
 * removed meanwhile still runs, one added does not); a `once` one is removed just before it runs
 * and never runs twice, even when a listener emits again.
 */
export class AbortEvent implements AbortEvents {
  #listeners: ((() => void) | Once)[] | undefined;

  on(_event: 'abort', listener: () => void): this {
    (this.#listeners ??= newList()).push(listener);
    return this;
  }

  once(_event: 'abort', listener: () => void): this {
    (this.#listeners ??= newList()).push({ fn: listener, fired: false });
    return this;
  }

  /** Removes the most recently added registration of `listener`, as EventEmitter's off does. */
  off(_event: 'abort', listener: () => void): this {
    const l = this.#listeners;
    if (l === undefined) return this;
    for (let i = l.length - 1; i >= 0; i--) {
      const e = l[i];
      if (e === listener || (typeof e === 'object' && e.fn === listener)) {
        l.splice(i, 1);
        break;
      }
    }
    return this;
  }

  listenerCount(_event: 'abort'): number {
    return this.#listeners?.length ?? 0;
  }

  emit(_event: 'abort'): boolean {
    const l = this.#listeners;
    if (l === undefined || l.length === 0) return false;
    const now = l.length === 1 ? [l[0] as (() => void) | Once] : l.slice();
    for (const e of now) {
      if (typeof e === 'function') {
        e();
        continue;
      }
      if (e.fired) continue;
      e.fired = true;
      const at = l.indexOf(e);
      if (at >= 0) l.splice(at, 1);
      e.fn();
    }
    return true;
  }
}

/**
 * A signal's listener list: made by Array.of, not an array literal, whose allocation site V8 may
 * pretenure under load (a list per request then goes to the old generation: docs/perf-notes.md,
 * "Session 12"); Array.of's arrays start in the young generation.
 */
function newList(): ((() => void) | Once)[] {
  return Array.of();
}
