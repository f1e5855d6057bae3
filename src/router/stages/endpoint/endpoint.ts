// Stage 4, endpoint: one attempt's hold on an endpoint: a slot through its admission control (fair
// shares per source and service, a bounded queue), its keep-alive pool, and failure accrual's probe.

import type { AbortEvents } from '../../../core/abort.js';
import type { Endpoint } from '../../../namer/addr.js';
import { ShedError } from './admission.js';
import type { EndpointPools, PoolEntry } from './endpoint-pool.js';
import { accrualKey, type FailureAccrual } from '../concrete/failure-accrual.js';
import { noRouterEvents, type RouterEvents } from '../../events.js';

export interface EndpointOptions {
  readonly pools: EndpointPools;
  readonly accrual: FailureAccrual;
  /** Where a shed request is reported (default: nowhere). */
  readonly events?: Pick<RouterEvents, 'shed'> | undefined;
}

/**
 * One attempt on one endpoint. Counted in the endpoint's load from creation; `admit` waits for a
 * slot; `release` (idempotent) gives back the slot and, if the attempt recorded no outcome, the
 * accrual probe it held, so a probe without an answer lets another go.
 */
export class Lease {
  readonly entry: PoolEntry;
  readonly #stage: EndpointStage;
  readonly #source: string | undefined;
  readonly #service: string;
  readonly #accrualKey: string;
  /** The client's accrual state (a per-prefix failureAccrual has its own; else the stage's). */
  readonly #accrual: FailureAccrual;
  readonly #probe: boolean;
  #admitted = false;
  #released = false;

  constructor(stage: EndpointStage, entry: PoolEntry, client: string, source: string | undefined, service: string, accrual: FailureAccrual = stage.accrual) {
    this.#stage = stage;
    this.#accrual = accrual;
    this.entry = entry;
    this.#source = source;
    this.#service = service;
    this.#accrualKey = accrualKey(client, entry.key);
    entry.inFlight++;
    this.#probe = accrual.begin(this.#accrualKey);
  }

  /** A slot: undefined when one is free at once, else a promise of one (rejected with a ShedError past the queue). */
  admit(abort: AbortEvents): Promise<void> | undefined {
    const waiting = this.entry.admission.acquire(this.#source, this.#service, abort);
    if (waiting === undefined) {
      this.#admitted = true; // a slot at once (most requests): nothing to wait for
      return undefined;
    }
    return this.#wait(waiting);
  }

  async #wait(waiting: Promise<void>): Promise<void> {
    try {
      await waiting;
    } catch (err) {
      if (err instanceof ShedError) this.#stage.events.shed(err.reason);
      throw err;
    }
    this.#admitted = true;
  }

  /** Failure accrual's view of this attempt's outcome. */
  record(success: boolean): void {
    this.#accrual.record(this.#accrualKey, success);
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.entry.inFlight--;
    if (this.#admitted) this.entry.admission.release(this.#source, this.#service);
    if (this.#probe) this.#accrual.abandon(this.#accrualKey);
  }
}

export class EndpointStage {
  readonly pools: EndpointPools;
  readonly accrual: FailureAccrual;
  readonly events: Pick<RouterEvents, 'shed'>;

  constructor(options: EndpointOptions) {
    this.pools = options.pools;
    this.accrual = options.accrual;
    this.events = options.events ?? noRouterEvents;
  }

  /**
   * An attempt on `endpoint` for bound client `client`. `source` is the fair-share key (the pod's
   * address on the outbound side; undefined on the inbound side, where every request comes from
   * a peer router and only the per-service share applies). `pools`, `accrual`: a per-prefix client's own.
   */
  lease(endpoint: Endpoint, client: string, source: string | undefined, service: string, pools: EndpointPools = this.pools, accrual?: FailureAccrual): Lease {
    return new Lease(this, pools.get(endpoint), client, source, service, accrual);
  }
}
