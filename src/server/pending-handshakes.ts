// Unfinished TLS handshakes, grouped by source, so that the cap on them closes the oldest one of
// the source holding the most: a flood evicts itself before it evicts a peer with one handshake.

import type { Socket } from 'node:net';

export class PendingHandshakes {
  /** Per source: its unfinished handshakes by remote end, oldest first (Maps keep insertion order). */
  readonly #bySource = new Map<string, Map<string, Socket>>();
  /** Sources by how many handshakes they hold, so the largest is found without a scan. */
  readonly #byCount = new Map<number, Set<string>>();
  #largest = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(source: string, peer: string, socket: Socket): void {
    let mine = this.#bySource.get(source);
    if (mine === undefined) {
      mine = new Map();
      this.#bySource.set(source, mine);
    }
    if (mine.has(peer)) return;
    this.#move(source, mine.size, mine.size + 1);
    mine.set(peer, socket);
    this.#size++;
  }

  /** Forgets a handshake (finished or closed); `socket` guards against a reused remote end. */
  remove(source: string, peer: string, socket?: Socket): void {
    const mine = this.#bySource.get(source);
    const held = mine?.get(peer);
    if (mine === undefined || held === undefined || (socket !== undefined && held !== socket)) return;
    mine.delete(peer);
    this.#size--;
    this.#move(source, mine.size + 1, mine.size);
    if (mine.size === 0) this.#bySource.delete(source);
  }

  has(source: string, peer: string, socket: Socket): boolean {
    return this.#bySource.get(source)?.get(peer) === socket;
  }

  /** Takes out the oldest handshake of the source that holds the most (the caller closes it). */
  takeFromLargest(): Socket | undefined {
    const source = this.#byCount.get(this.#largest)?.values().next().value;
    if (source === undefined) return undefined;
    const first = this.#bySource.get(source)?.entries().next().value;
    if (first === undefined) return undefined;
    const [peer, socket] = first;
    this.remove(source, peer);
    return socket;
  }

  #move(source: string, from: number, to: number): void {
    if (from > 0) {
      const set = this.#byCount.get(from);
      set?.delete(source);
      if (set?.size === 0) this.#byCount.delete(from);
    }
    if (to > 0) {
      let set = this.#byCount.get(to);
      if (set === undefined) {
        set = new Set();
        this.#byCount.set(to, set);
      }
      set.add(source);
    }
    // Counts change by one, so the largest moves up with an add and down by one at most.
    if (to > this.#largest) this.#largest = to;
    else if (from === this.#largest && !this.#byCount.has(from)) this.#largest = from - 1;
  }
}
