// Every socket a listener accepted, from the first byte on (before any TLS handshake): counted in
// total and per source against the listener's caps, and destroyed when a drain's grace ends.

import type { Socket } from 'node:net';
import { PendingHandshakes } from './pending-handshakes.js';

/**
 * Why an accepted connection was closed at once (a metric label: keep the set fixed). For
 * handshake_limit it is an older unfinished handshake that is closed, to make room.
 */
export type RefusalReason = 'listener_limit' | 'source_limit' | 'handshake_limit';

export interface ConnectionLimits {
  /** Sockets open at once on the listener. */
  readonly max: number;
  /** Sockets open at once from one source address (an IPv6 source counts by its /64). */
  readonly perSource: number;
  /**
   * TLS only: unfinished handshakes at once. They are the state anyone can create without a
   * certificate, and the dearest (~40 KB each: bench:handshakes), so they get their own bound.
   */
  readonly pendingHandshakes?: number;
}

export class Connections {
  readonly #all = new Set<Socket>();
  readonly #bySource = new Map<string, number>();
  readonly #limits: ConnectionLimits;
  readonly #pending = new PendingHandshakes();

  constructor(limits: ConnectionLimits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#all.size;
  }

  /** Sources with at least one open socket (bounded by `max`). */
  get sources(): number {
    return this.#bySource.size;
  }

  /**
   * Takes an accepted socket into account, or says why it is over a cap (the caller closes it).
   * A socket seen already (a CONNECT tunnel fed back into the server) is not counted twice.
   */
  admit(socket: Socket): RefusalReason | undefined {
    if (this.#all.has(socket)) return undefined;
    if (this.#all.size >= this.#limits.max) return 'listener_limit';
    const source = sourceKey(socket.remoteAddress);
    const n = this.#bySource.get(source) ?? 0;
    if (n >= this.#limits.perSource) return 'source_limit';
    this.#all.add(socket);
    this.#bySource.set(source, n + 1);
    const peer = remoteEnd(socket);
    if (this.#limits.pendingHandshakes !== undefined) this.#pending.add(source, peer, socket);
    socket.once('close', () => {
      this.#all.delete(socket);
      this.#pending.remove(source, peer, socket);
      const left = (this.#bySource.get(source) ?? 1) - 1;
      if (left <= 0) this.#bySource.delete(source);
      else this.#bySource.set(source, left);
    });
    return undefined;
  }

  /**
   * Over the bound on unfinished handshakes, the oldest one of the source holding the most is
   * closed. Refusing new ones instead would let a flood keep every peer out for a whole handshake
   * deadline; closing the oldest overall would let a fast flood close a real peer's handshake in
   * progress. This way a peer with a handshake or two loses it only to a source with fewer.
   */
  evictHandshake(): Socket | undefined {
    const max = this.#limits.pendingHandshakes;
    if (max === undefined || this.#pending.size <= max) return undefined;
    const victim = this.#pending.takeFromLargest();
    victim?.destroy();
    return victim;
  }

  /** A TLS handshake finished (`socket` is the TLS socket: same remote end as the accepted one). */
  handshakeDone(socket: Socket): void {
    this.#pending.remove(sourceKey(socket.remoteAddress), remoteEnd(socket));
  }

  /** Whether the accepted socket's handshake is still unfinished (TLS listeners). */
  isPending(socket: Socket): boolean {
    return this.#pending.has(sourceKey(socket.remoteAddress), remoteEnd(socket), socket);
  }

  /** Unfinished handshakes now (TLS listeners). */
  get pendingHandshakes(): number {
    return this.#pending.size;
  }

  /** Destroys the sockets `drop` picks now (a drain ending the ones with nothing to finish). */
  destroyWhere(drop: (socket: Socket) => boolean): void {
    for (const s of [...this.#all]) if (drop(s)) s.destroy();
  }

  destroyAll(): void {
    this.destroyWhere(() => true);
  }
}

/** A connection's remote end, the same on the accepted socket and the TLS socket wrapping it. */
function remoteEnd(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}

/**
 * The address a per-source cap counts under. IPv4 (and IPv4-mapped IPv6) is the address itself;
 * native IPv6 is its /64, since one host is usually given a whole /64 and can pick any address in it.
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return '-';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('%')[0]?.split('::') ?? [];
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return (
    groups
      .slice(0, 4)
      .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
      .join(':') + '::/64'
  );
}
