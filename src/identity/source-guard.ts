// Who may use the outgoing port: pods scheduled on this node, the node's own addresses, loopback
// and configured extra CIDRs. Decided per connection, before the router reads a request from it.

import { BoundedMap } from '../core/bounded-map.js';
import { type Clock, systemClock } from '../core/clock.js';
import { BlockList, isIPv6 } from 'node:net';
import type { PodDirectory, PodInfo } from './pod-directory.js';
import { normalizeIp } from './pod-directory.js';

/** Who a connection on the outgoing port comes from, once admitted. */
export type Source =
  | { readonly kind: 'pod'; readonly pod: PodInfo }
  /** Loopback, the node's own addresses (hostNetwork pods, the kubelet): the node speaks. */
  | { readonly kind: 'node' }
  /** An address in `allowedSourceCidrs`: admitted, with no workload identity. */
  | { readonly kind: 'cidr' };

export type RefusalReason = 'not_local' | 'unknown_source' | 'too_many_waiting';

export type Admission = { readonly ok: true; readonly source: Source } | { readonly ok: false; readonly reason: RefusalReason };

export interface SourceGuardOptions {
  /** This router's node (pods on other nodes are refused). */
  readonly nodeName: string;
  readonly pods: PodDirectory;
  /** The node's own addresses (interfaces, HOST_IP); asked per unknown source, so it may change. */
  readonly nodeAddresses: () => Iterable<string>;
  /** Extra sources, e.g. `10.0.0.0/8` or `fd00::/8`. Validated by parseCidr at config load. */
  readonly extraCidrs?: readonly string[];
  /**
   * How long a connection from an address no pod has yet waits for the pod watch to catch up (a
   * pod's first request can race the watch event that carries its IP). Default 2000 ms.
   */
  readonly waitMs?: number;
  /** Connections waiting at once; past it new unknown sources are refused. Default 1024. */
  readonly maxWaiting?: number;
  /** The clock of the wait for an unknown source (tests drive it; default systemClock). */
  readonly clock?: Clock;
  /** Sees every source address before the decision (identity/snat-detector.ts). */
  readonly observe?: (ip: string) => void;
}

/** Parses `a.b.c.d/n` or `v6::/n`; throws a one-line reason when it is not a CIDR. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text.trim());
  const list = new BlockList();
  if (m !== null) {
    const address = m[1] as string;
    const prefix = Number(m[2]);
    const family = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix <= (family === 'ipv6' ? 128 : 32)) {
      try {
        list.addSubnet(address, prefix, family);
        return { address, prefix, family };
      } catch {
        // fall through to the error
      }
    }
  }
  throw new Error(`${JSON.stringify(text)} is not a CIDR like 10.0.0.0/8 or fd00::/8`);
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function familyOf(ip: string): 'ipv4' | 'ipv6' {
  return isIPv6(ip) ? 'ipv6' : 'ipv4';
}

export class SourceGuard {
  readonly #o: SourceGuardOptions;
  readonly #extra = new BlockList();
  readonly #clock: Clock;
  #waiting = 0;

  constructor(options: SourceGuardOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    for (const c of options.extraCidrs ?? []) {
      const { address, prefix, family } = parseCidr(c);
      this.#extra.addSubnet(address, prefix, family);
    }
  }

  /** Connections waiting for the pod watch now (a gauge for the admin page). */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * The decision for a connection from `remote`: synchronous when the address is known (the
   * common case: no promise, no timer), a promise when it must wait for the pod watch.
   */
  admit(remote: string | undefined): Admission | Promise<Admission> {
    if (remote === undefined) return { ok: false, reason: 'unknown_source' };
    const ip = normalizeIp(remote);
    this.#o.observe?.(ip);
    const known = this.#decide(ip);
    if (known !== undefined) return known;
    if (this.#waiting >= (this.#o.maxWaiting ?? 1024)) return { ok: false, reason: 'too_many_waiting' };
    return this.#wait(ip);
  }

  /** The decision if one can be made now, else undefined (no pod has this IP yet). */
  #decide(ip: string): Admission | undefined {
    // A pod's address first: no cluster gives a pod a loopback address, but the demo and tests
    // stand pods up on 127.x addresses, and they must be told apart from the node.
    const pod = this.#o.pods.byIp(ip);
    if (pod !== undefined) {
      return pod.nodeName === this.#o.nodeName ? { ok: true, source: { kind: 'pod', pod } } : { ok: false, reason: 'not_local' };
    }
    const family = familyOf(ip);
    if (LOOPBACK.check(ip, family)) return { ok: true, source: { kind: 'node' } };
    for (const a of this.#o.nodeAddresses()) if (normalizeIp(a) === ip) return { ok: true, source: { kind: 'node' } };
    if (this.#extra.check(ip, family)) return { ok: true, source: { kind: 'cidr' } };
    return undefined;
  }

  #wait(ip: string): Promise<Admission> {
    this.#waiting++;
    return new Promise<Admission>((resolve) => {
      let settled = false;
      const finish = (a: Admission): void => {
        if (settled) return;
        settled = true;
        this.#waiting--;
        unsubscribe();
        cancel();
        resolve(a);
      };
      const unsubscribe = this.#o.pods.onChange(() => {
        const d = this.#decide(ip);
        if (d !== undefined) finish(d);
      });
      // Not a pod of the cluster after the wait (or the watch never synced): not from this node.
      const cancel = this.#clock.schedule(this.#o.waitMs ?? 2000, () => finish({ ok: false, reason: 'unknown_source' }));
    });
  }
}

/**
 * Refusal log lines at most once per source per interval (default a minute), so a scanner cannot
 * flood the log; the map of recent sources is bounded and forgets the oldest first.
 */
export class RefusalLog {
  readonly #last: BoundedMap<string, number>;
  readonly #clock: Clock;
  readonly #intervalMs: number;

  constructor(options: { clock?: Clock; intervalMs?: number; maxSources?: number } = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#intervalMs = options.intervalMs ?? 60_000;
    // Insertion order: a source is re-inserted when logged, so the oldest log line leaves first.
    this.#last = new BoundedMap({ name: 'refusal_log_sources', max: options.maxSources ?? 4096, order: 'insertion' });
  }

  /** Whether a refusal from `source` should be logged now. */
  shouldLog(source: string): boolean {
    const now = this.#clock.now();
    const last = this.#last.get(source);
    if (last !== undefined && now - last < this.#intervalMs) return false;
    this.#last.set(source, now); // set() re-inserts: the map's order is the age order
    return true;
  }
}
