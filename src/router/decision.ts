// One decision for every entry path: who called (the admitted source on the outgoing side, the
// verified peer and its checked workload claim on the incoming side), what claim goes on to the
// next hop, and what identity l5d-client-id carries. HTTP/1 requests, Upgrades, CONNECT and the
// requests inside a CONNECT tunnel (and HTTP/2) all make their EntryDecision here; the router
// plans a route only for a request holding one, and the plan runs the authorization stage
// (the override check and the policy decision on the destination) with the decided caller.

import type { IncomingHttpHeaders } from 'node:http';
import type { Callers } from '../identity/caller.js';
import type { Source } from '../identity/source-guard.js';
import { CLAIM_HEADER } from '../identity/workload-identity.js';
import type { Caller } from '../identity/caller.js';
import type { Direction } from './context.js';

/** How a request entered: a row of the decision matrix (test/e2e/entry-decision.test.ts). */
export type EntryPath = 'http1' | 'upgrade' | 'connect' | 'connect-inner' | 'h2';

/** What the decision reads: protocol-neutral facts of one request and the connection it came on. */
export interface EntryFacts {
  readonly direction: Direction;
  readonly entry: EntryPath;
  /** Outgoing side: the source the listener's guard admitted for this connection (none without a guard). */
  readonly source: Source | undefined;
  /** The verified peer certificate's identity (a TLS listener with client auth), else undefined. */
  readonly peerId: string | undefined;
  /** The request's headers (the incoming side reads the workload claim from them). */
  readonly headers: IncomingHttpHeaders;
}

/** The outcome of the entry step; only `EntryDecider.decide` makes one. */
export class EntryDecision {
  readonly direction: Direction;
  readonly entry: EntryPath;
  /** The caller the policy decides on (undefined: this listener works out no callers, e.g. a bare test listener). */
  readonly caller: Caller | undefined;
  /** What l5d-client-id carries to the next hop (incoming side: the caller's identity, else the peer's). */
  readonly clientId: string | undefined;
  /**
   * The brand of a decision made here: a Router refuses any other object (a cast, a literal or an
   * object made from this prototype has no such field). A private field costs nothing per request,
   * where a WeakSet of issued decisions cost an insertion and weak-table work for the collector.
   */
  readonly #issued = true;

  private constructor(direction: Direction, entry: EntryPath, caller: Caller | undefined, clientId: string | undefined) {
    this.direction = direction;
    this.entry = entry;
    this.caller = caller;
    this.clientId = clientId;
  }

  /** Whether `d` was made by EntryDecider.decide. */
  static issued(d: object): boolean {
    return #issued in d;
  }

  /** The workload claim the outgoing router sends to the peer router (none on the incoming side). */
  get claim(): string | undefined {
    return this.direction === 'outbound' ? this.caller?.claim : undefined;
  }

  /** @internal Only for EntryDecider. */
  static make(f: EntryFacts, caller: Caller | undefined): EntryDecision {
    const clientId = f.direction === 'inbound' ? (caller?.identity ?? f.peerId) : f.peerId;
    return new EntryDecision(f.direction, f.entry, caller, clientId);
  }
}

/** Throws unless `d` came from EntryDecider.decide (the router calls it before planning). */
export function assertDecided(d: EntryDecision | undefined): asserts d is EntryDecision {
  if (d === undefined || !EntryDecision.issued(d)) throw new Error('internal: a request reached the router without an entry decision');
}

export class EntryDecider {
  readonly #callers: Callers | undefined;

  /** `callers`: the router's callers (identity/caller.ts); undefined: no caller is worked out (tests). */
  constructor(callers: Callers | undefined) {
    this.#callers = callers;
  }

  /**
   * The decision for one request. Synchronous when it can be; a claim check may wait briefly for
   * this router's pod watch (a Promise). Throws (or rejects with) HostmeshError IDENTITY_REFUSED
   * for a claim that fails its check: nothing of the request may be forwarded then.
   */
  decide(f: EntryFacts): EntryDecision | Promise<EntryDecision> {
    const callers = this.#callers;
    if (callers === undefined) return EntryDecision.make(f, undefined);
    if (f.direction === 'outbound') return EntryDecision.make(f, callers.fromSource(f.source));
    const caller = callers.fromPeer(f.peerId, f.headers[CLAIM_HEADER]);
    return caller instanceof Promise ? caller.then((c) => EntryDecision.make(f, c)) : EntryDecision.make(f, caller);
  }
}
