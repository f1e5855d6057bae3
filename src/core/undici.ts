// undici's dispatchers (Client, Pool, Agent) without the rest of undici. Importing 'undici' loads
// fetch, WebSocket, EventSource, the cache stores, mocks and interceptors as well: 4.7 MB of
// heap in every router that never uses them; these three with their request API take 1.8 MB
// (docs/memory.md, measured with node --expose-gc). Import undici's classes from here; `import
// type` from 'undici' is free.

import { createRequire } from 'node:module';
import type * as U from 'undici';

const require = createRequire(import.meta.url);
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof U.Dispatcher;
// What undici's index adds to every dispatcher: request(), stream(), pipeline(), connect(), upgrade().
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);
/** undici's dispatcher base class (an EventEmitter with request(), stream(), ...): a dispatcher of our own extends it. */
export { Dispatcher };

/**
 * A class loaded on first use: `new`, `instanceof` and static reads go to `load()`'s class, loaded
 * then (undici is CommonJS: a synchronous require). A router on the lean engine never constructs
 * undici's Client, Pool or Agent (client.engine undici, an Upgrade, or a Node without the HTTP
 * parser binding does): loading them at start cost 0.95 MB of heap and 0.5 MB of external memory
 * (issue 28, docs/memory.md "Session 8"). The callers' code is unchanged.
 */
function lazyClass<C extends abstract new (...args: never[]) => unknown>(load: () => C): C {
  let real: C | undefined;
  const get = (): C => {
    real ??= load();
    return real;
  };
  type Ctor = new (...args: unknown[]) => object;
  // The target is a plain function, so the proxy is constructible; every trap asks the real class.
  const proxy: C = new Proxy(function placeholder() {} as unknown as C, {
    construct: (_t, args, newTarget) => Reflect.construct(get() as unknown as Ctor, args, newTarget === proxy ? (get() as unknown as Ctor) : newTarget),
    get: (_t, key) => Reflect.get(get(), key),
    has: (_t, key) => Reflect.has(get(), key),
    getPrototypeOf: () => Reflect.getPrototypeOf(get()),
  });
  return proxy;
}

export const Client = lazyClass(() => require('undici/lib/dispatcher/client.js') as typeof U.Client);
export type Client = U.Client;
/**
 * The queue of requests waiting for a free connection of a pool, as undici's pool uses it
 * (isEmpty, push, shift -> null when empty), holding nothing while empty. undici's own queue
 * allocates a 2,048-slot array per pool up front: 16 KB for every endpoint pool, 16 MB for the
 * 1,000 a router keeps at most (client.maxEndpointPools), measured in a heap snapshot of a router
 * that bound 1,000 services (docs/memory.md). Requests rarely wait here: admission queues them
 * before they reach the pool.
 */
export class WaitQueue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  isEmpty(): boolean {
    return this.#head === this.#items.length;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | null {
    if (this.#head === this.#items.length) return null;
    const item = this.#items[this.#head] as T;
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head); // drop the consumed front, amortized O(1)
      this.#head = 0;
    }
    return item;
  }
}

/** undici's private field holding a pool's wait queue (pool-base.js `Symbol('queue')`); checked, not assumed. */
const queueField = (pool: object): symbol | undefined =>
  Object.getOwnPropertySymbols(pool).find((k) => k.description === 'queue' && (pool as Record<symbol, unknown>)[k]?.constructor?.name === 'FixedQueue');

/** undici's Pool with the lean wait queue; if a future undici renames the field, undici's queue stays. */
export const Pool = lazyClass(() => {
  const UndiciPool = require('undici/lib/dispatcher/pool.js') as typeof U.Pool;
  return class Pool extends UndiciPool {
    constructor(...args: ConstructorParameters<typeof U.Pool>) {
      super(...args);
      const k = queueField(this);
      if (k !== undefined) (this as unknown as Record<symbol, unknown>)[k] = new WaitQueue();
    }
  } as typeof U.Pool;
});
export type Pool = U.Pool;

/** Whether `pool` runs on the lean wait queue (tests; false means undici changed its field). */
export const hasLeanQueue = (pool: object): boolean =>
  Object.getOwnPropertySymbols(pool).some((k) => k.description === 'queue' && (pool as Record<symbol, unknown>)[k] instanceof WaitQueue);
export const Agent = lazyClass(() => require('undici/lib/dispatcher/agent.js') as typeof U.Agent);
export type Agent = U.Agent;
