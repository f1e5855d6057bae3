import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import t from 'tap';
import { AbortEvent } from '../../src/core/abort.js';

// AbortEvent replaces an EventEmitter as the forward path's abort signal: whatever sequence of
// on / once / off / emit the router makes, it must call the same listeners, in the same order, as
// an EventEmitter would (the model), including listeners that remove others or emit again.

type Op =
  | { readonly op: 'on' | 'once' | 'off'; readonly who: number }
  | { readonly op: 'emit' }
  | { readonly op: 'on-off'; readonly who: number; readonly victim: number }
  | { readonly op: 'on-emit'; readonly who: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constantFrom('on' as const, 'once' as const, 'off' as const), who: fc.integer({ min: 0, max: 3 }) }),
  fc.constant({ op: 'emit' as const }),
  fc.record({ op: fc.constant('on-off' as const), who: fc.integer({ min: 4, max: 5 }), victim: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ op: fc.constant('on-emit' as const), who: fc.integer({ min: 6, max: 6 }) }),
);

interface Target {
  on(e: 'abort', f: () => void): unknown;
  once(e: 'abort', f: () => void): unknown;
  off(e: 'abort', f: () => void): unknown;
  emit(e: 'abort'): boolean;
}

/** Runs the ops on a target; returns the calls seen, in order, and each emit's result. */
function run(target: Target, ops: readonly Op[]): string[] {
  const seen: string[] = [];
  const fns = new Map<number, () => void>();
  let depth = 0;
  const fn = (who: number, extra?: () => void): (() => void) => {
    let f = fns.get(who);
    if (f === undefined) {
      f = () => {
        seen.push(`call ${who}`);
        extra?.();
      };
      fns.set(who, f);
    }
    return f;
  };
  for (const o of ops) {
    switch (o.op) {
      case 'on':
        target.on('abort', fn(o.who));
        break;
      case 'once':
        target.once('abort', fn(o.who));
        break;
      case 'off':
        target.off('abort', fn(o.who));
        break;
      case 'emit':
        seen.push(`emit ${target.emit('abort')}`);
        break;
      case 'on-off':
        target.on(
          'abort',
          fn(o.who, () => target.off('abort', fn(o.victim))),
        );
        break;
      case 'on-emit':
        target.once(
          'abort',
          fn(o.who, () => {
            if (depth++ < 1) seen.push(`inner emit ${target.emit('abort')}`);
            depth--;
          }),
        );
        break;
    }
  }
  return seen;
}

t.test('calls the listeners an EventEmitter would, in its order (model-based property)', (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const model = run(new EventEmitter(), ops);
      const got = run(new AbortEvent(), ops);
      if (JSON.stringify(model) !== JSON.stringify(got)) throw new Error(`model ${JSON.stringify(model)}\ngot   ${JSON.stringify(got)}`);
    }),
    { numRuns: 2000 },
  );
  t.end();
});

t.test('a once listener runs once; off removes the latest registration; counts follow', (t) => {
  const a = new AbortEvent();
  const calls: string[] = [];
  const f = (): void => void calls.push('f');
  a.once('abort', f);
  a.on('abort', f);
  t.equal(a.listenerCount('abort'), 2);
  t.equal(a.emit('abort'), true);
  t.same(calls, ['f', 'f']);
  t.equal(a.listenerCount('abort'), 1, 'the once registration is gone');
  a.off('abort', f);
  t.equal(a.emit('abort'), false, 'no listener left');
  t.same(calls, ['f', 'f']);
  t.end();
});
