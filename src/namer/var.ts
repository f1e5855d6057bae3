// A changing value (Finagle's Var): the current state plus observers told of every change.
// Namers publish addresses through it; bindings and balancers subscribe.
//
// Observation is the reference count of what a Var stands for (as Finagle's Var.async): a namer
// learns through `onObserved`/`onUnobserved` when its first observer arrives and its last one
// leaves, so state kept for request data lives exactly as long as something uses it.

export type Observer<T> = (value: T) => void;

export interface VarHooks {
  /** The first observer subscribed (0 -> 1). */
  readonly onObserved?: () => void;
  /** The last observer unsubscribed (1 -> 0). */
  readonly onUnobserved?: () => void;
}

export class Var<T> {
  #value: T;
  readonly #observers = new Set<Observer<T>>();
  readonly #hooks: VarHooks | undefined;
  /** For derived Vars: computes the value while nobody observes (no subscription is held then). */
  readonly #pull: (() => T) | undefined;

  constructor(initial: T, hooks?: VarHooks, pull?: () => T) {
    this.#value = initial;
    this.#hooks = hooks;
    this.#pull = pull;
  }

  /**
   * A Var following `source` through `f`, subscribed to it only while observed itself: an
   * unobserved derived Var holds no reference count on its source and can simply be dropped.
   */
  static map<A, B>(source: Var<A>, f: (a: A) => B): Var<B> {
    let off: (() => void) | undefined;
    const out: Var<B> = new Var<B>(
      f(source.get()),
      {
        onObserved: () => {
          off = source.subscribe((a) => out.set(f(a)));
        },
        onUnobserved: () => {
          off?.();
          off = undefined;
        },
      },
      () => f(source.get()),
    );
    return out;
  }

  get(): T {
    if (this.#pull !== undefined && this.#observers.size === 0) return this.#pull();
    return this.#value;
  }

  /** Replaces the value and tells every observer (skipped when the same object is set again). */
  set(value: T): void {
    if (Object.is(value, this.#value)) return;
    this.#value = value;
    for (const o of [...this.#observers]) o(value);
  }

  /** Calls `observer` with the current value now and on every change; returns an unsubscribe. */
  subscribe(observer: Observer<T>): () => void {
    // The hook runs before the observer is added, so a derived Var that starts following its
    // source here does not call the new observer twice.
    if (this.#observers.size === 0) {
      if (this.#pull !== undefined) this.#value = this.#pull();
      this.#hooks?.onObserved?.();
    }
    this.#observers.add(observer);
    observer(this.#value);
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      this.#observers.delete(observer);
      if (this.#observers.size === 0) this.#hooks?.onUnobserved?.();
    };
  }

  /**
   * Adds `observer`, called on every change from now on but not now (for a caller that has just
   * read the value); `unobserve` takes it off. The same observation as `subscribe`, without a
   * closure per subscription: one observer function may watch many Vars.
   */
  observe(observer: Observer<T>): void {
    if (this.#observers.has(observer)) return;
    if (this.#observers.size === 0) {
      if (this.#pull !== undefined) this.#value = this.#pull();
      this.#hooks?.onObserved?.();
    }
    this.#observers.add(observer);
  }

  unobserve(observer: Observer<T>): void {
    if (this.#observers.delete(observer) && this.#observers.size === 0) this.#hooks?.onUnobserved?.();
  }

  get observerCount(): number {
    return this.#observers.size;
  }
}

/**
 * The first state of `v` that is not `pending` (a lookup, an address set), or undefined if none
 * comes within `timeoutMs`. The one way to wait on a Var: the subscription goes once settled (in a
 * microtask, so the Var is not left without observers while it is still telling them) or at the deadline.
 */
export function settled<T extends { readonly kind: string }>(v: Var<T>, timeoutMs: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    let unsubscribe: (() => void) | undefined;
    const timer = setTimeout(() => {
      unsubscribe?.();
      resolve(undefined);
    }, timeoutMs);
    unsubscribe = v.subscribe((s) => {
      if (s.kind === 'pending') return;
      clearTimeout(timer);
      queueMicrotask(() => unsubscribe?.());
      resolve(s);
    });
  });
}
