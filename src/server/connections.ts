// Every socket a listener accepted, from the first byte on (before any TLS handshake): counted in
// total and per source against the listener's caps, and destroyed when a drain's grace ends.

import type { Socket } from 'node:net';

/** Why an accepted connection was closed at once (a metric label: keep the set fixed). */
export type RefusalReason = 'listener_limit' | 'source_limit';

export interface ConnectionLimits {
  /** Sockets open at once on the listener. */
  readonly max: number;
  /** Sockets open at once from one source address (an IPv6 source counts by its /64). */
  readonly perSource: number;
}

export class Connections {
  readonly #all = new Set<Socket>();
  readonly #bySource = new Map<string, number>();
  readonly #limits: ConnectionLimits;

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
    socket.once('close', () => {
      this.#all.delete(socket);
      const left = (this.#bySource.get(source) ?? 1) - 1;
      if (left <= 0) this.#bySource.delete(source);
      else this.#bySource.set(source, left);
    });
    return undefined;
  }

  /** Destroys the sockets `drop` picks now (a drain ending the ones with nothing to finish). */
  destroyWhere(drop: (socket: Socket) => boolean): void {
    for (const s of [...this.#all]) if (drop(s)) s.destroy();
  }

  destroyAll(): void {
    this.destroyWhere(() => true);
  }
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
  return groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':') + '::/64';
}
