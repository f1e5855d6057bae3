// A changing value (Finagle's Var): the current state plus observers told of every change.
// Namers publish addresses through it; bindings and balancers subscribe.

export type Observer<T> = (value: T) => void;

export class Var<T> {
  #value: T;
  readonly #observers = new Set<Observer<T>>();

  constructor(initial: T) {
    this.#value = initial;
  }

  get(): T {
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
    this.#observers.add(observer);
    observer(this.#value);
    return () => {
      this.#observers.delete(observer);
    };
  }

  get observerCount(): number {
    return this.#observers.size;
  }
}
