// Stage 1, identify: checks what must be refused before any routing work (a request loop, a
// deadline already past), then names the request (a logical name such as /svc/<host>).

import type { IncomingHttpHeaders } from 'node:http';
import type { Path } from '../../../dtab/path.js';
import { HostmeshError } from '../../../errors.js';
import type { RequestContext } from '../../context.js';
import { DEADLINE_HEADER, effectiveDeadline, expiredError, type RequestDeadline } from '../../deadline.js';
import { headerValue, viaHops } from '../../headers.js';
import { normalizeTarget } from './target.js';
import type { RequestFacts } from './identifiers.js';
import type { RouterEvents } from '../../events.js';

/** What the stages read of a request: its head only (IncomingMessage has it; so has a CONNECT's name). */
export interface RequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion: string;
}

/** A request that may be routed: its normalized Host and origin-form target, and its deadline. */
export interface Arrival {
  readonly method: string;
  readonly host: string | undefined;
  readonly target: string;
  readonly deadline: RequestDeadline | undefined;
  /** When the request arrived (the injected clock): a per-service totalTimeoutMs counts from here. */
  readonly arrived: number;
}

/** The logical name and the target to send upstream (an identifier may rewrite it). */
export interface Identified {
  readonly service: Path;
  readonly target: string;
  /** The request's deadline with its service's own totalTimeoutMs (io.l5d.static), else the arrival's. */
  readonly deadline: RequestDeadline | undefined;
}

export interface IdentifyOptions {
  /** The router's identifiers (identifiers.ts). */
  readonly identify: (req: RequestFacts) => { name: Path; target: string };
  readonly maxHops: number;
  readonly now: () => number;
  /**
   * Linkerd 1's service.totalTimeoutMs of a logical name (its io.l5d.static prefix configs' over the
   * router's own), or the router's own when called without one: the one source of both. Unset or
   * undefined: only a caller's l5d-ctx-deadline bounds the request.
   */
  readonly totalTimeoutMs?: ((service?: Path) => number | undefined) | undefined;
  /** Where a deadline already past on arrival is reported (default: nowhere). */
  readonly events?: Pick<RouterEvents, 'timeout'> | undefined;
}

export class IdentifyStage {
  readonly #o: IdentifyOptions;

  constructor(options: IdentifyOptions) {
    this.#o = options;
  }

  /** Refuses a loop or a deadline already past (answered at once, never bound), and normalizes the target. */
  arrive(req: RequestHead, ctx: RequestContext): Arrival {
    const h = req.headers;
    if (viaHops(h.via) >= this.#o.maxHops) {
      throw HostmeshError.of('PROXY_LOOP', 'hops', { maxHops: this.#o.maxHops });
    }
    const arrived = this.#o.now();
    const deadline = effectiveDeadline(arrived, h[DEADLINE_HEADER], this.#o.totalTimeoutMs?.());
    if (deadline !== undefined && deadline.at <= arrived) {
      this.#o.events?.timeout('deadline_passed');
      throw expiredError(deadline, arrived);
    }
    ctx.deadline = deadline;
    const { host, target } = normalizeTarget(req.url ?? '/', h.host);
    return { method: req.method ?? 'GET', host, target, deadline, arrived };
  }

  /** The request's logical name, through the router's identifiers in turn. */
  name(req: RequestHead, arrival: Arrival, ctx: RequestContext): Identified {
    const h = req.headers;
    const id = this.#o.identify({
      method: arrival.method,
      host: arrival.host,
      target: arrival.target,
      httpVersion: req.httpVersion,
      header: (n) => headerValue(h[n]),
    });
    ctx.service = id.name.show();
    // The name decides a per-prefix totalTimeoutMs: counted from arrival, as the router's own.
    const total = this.#o.totalTimeoutMs?.(id.name);
    let deadline = arrival.deadline;
    if (total !== undefined && total !== this.#o.totalTimeoutMs?.()) {
      deadline = effectiveDeadline(arrival.arrived, h[DEADLINE_HEADER], total);
      const now = this.#o.now();
      if (deadline !== undefined && deadline.at <= now) {
        this.#o.events?.timeout('deadline_passed');
        throw expiredError(deadline, now);
      }
      ctx.deadline = deadline;
    }
    return { service: id.name, target: id.target, deadline };
  }

  /** The name a Host alone gets (CONNECT's check that a name binds). */
  nameOfHost(host: string): Path {
    return this.#o.identify({ method: 'GET', host, target: '/', httpVersion: '1.1', header: () => undefined }).name;
  }
}
