// Detects a CNI that rewrites pod source addresses on the way to the router's hostPort (the
// portmap plugin with masquerading, some cloud CNIs): connections then arrive from the pod
// network's gateway (the node's bridge) instead of the pod, so no pod can be told from another.
// The router cannot undo it; it says so loudly, once an hour, and counts it (README, "CNIs that
// rewrite sources through hostPort").

import { type Clock, systemClock } from '../core/clock.js';
import type { SourceEvents } from './events.js';
import { readFileSync } from 'node:fs';

/** The IPv4 default-route gateways in /proc/net/route's text (little-endian hex columns). */
export function defaultGateways(routeText: string): string[] {
  const out: string[] = [];
  for (const line of routeText.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || f[1] !== '00000000' || !/^[0-9A-Fa-f]{8}$/.test(f[2] ?? '')) continue;
    const hex = f[2] as string;
    if (hex === '00000000') continue;
    const bytes = [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
    out.push(bytes.join('.'));
  }
  return [...new Set(out)];
}

/** This pod's default gateways (empty outside Linux or on hostNetwork, where the check is moot). */
export function podGateways(file = '/proc/net/route'): string[] {
  try {
    return defaultGateways(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

export interface SnatDetectorOptions {
  readonly gateways: readonly string[];
  readonly warn: (message: string, source: string) => void;
  /** Where a rewritten source is reported, once per connection seen from a gateway (default: nowhere). */
  readonly events?: SourceEvents;
  /** The clock of the hourly warning (default systemClock). */
  readonly clock?: Clock;
}

const MESSAGE =
  'connections to the outgoing port arrive from the pod network gateway: the CNI rewrites pod source addresses through hostPort (SNAT), so pods cannot be told apart and get no workload identity; use a CNI that keeps sources (Calico, Cilium) or the host-network overlay';

export class SnatDetector {
  readonly #gateways: ReadonlySet<string>;
  readonly #o: SnatDetectorOptions;
  #lastWarned = Number.NEGATIVE_INFINITY;
  seen = 0;

  constructor(options: SnatDetectorOptions) {
    this.#o = options;
    this.#gateways = new Set(options.gateways);
  }

  /** A connection's source address; true when it is a rewritten one. */
  observe(ip: string): boolean {
    const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
    if (!this.#gateways.has(plain)) return false;
    this.seen++;
    this.#o.events?.rewrittenSource();
    const now = (this.#o.clock ?? systemClock).now();
    if (now - this.#lastWarned >= 3_600_000) {
      this.#lastWarned = now;
      this.#o.warn(MESSAGE, plain);
    }
    return true;
  }
}
