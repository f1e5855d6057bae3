// Per destination, who called it and how the policy answered (the dashboard's callers table):
// bounded like the other per-service stats, so caller identities cannot grow it without limit.

/** Destinations kept before further ones are counted under OVERFLOW_DESTINATION. */
export const MAX_AUTHZ_DESTINATIONS = 500;
/** Callers kept per destination before further ones are counted under OTHER_CALLERS. */
export const MAX_CALLERS_PER_DESTINATION = 16;
const OVERFLOW_DESTINATION = 'overflow';
const OTHER_CALLERS = 'other';

export interface CallerCounts {
  allowed: number;
  denied: number;
  /** Allowed only because the namespace is in audit mode (would-deny). */
  audited: number;
}

export class AuthzCallers {
  readonly #byDestination = new Map<string, { service: string; callers: Map<string, CallerCounts> }>();

  record(service: string, destination: string, caller: string, verdict: 'allow' | 'deny' | 'audit'): void {
    let d = this.#byDestination.get(destination);
    if (d === undefined) {
      const key = this.#byDestination.size >= MAX_AUTHZ_DESTINATIONS ? OVERFLOW_DESTINATION : destination;
      d = this.#byDestination.get(key);
      if (d === undefined) {
        d = { service: key === destination ? service : OVERFLOW_DESTINATION, callers: new Map() };
        this.#byDestination.set(key, d);
      }
    }
    let c = d.callers.get(caller);
    if (c === undefined) {
      const key = d.callers.size >= MAX_CALLERS_PER_DESTINATION ? OTHER_CALLERS : caller;
      c = d.callers.get(key);
      if (c === undefined) d.callers.set(key, (c = { allowed: 0, denied: 0, audited: 0 }));
    }
    if (verdict === 'deny') c.denied++;
    else {
      c.allowed++;
      if (verdict === 'audit') c.audited++;
    }
  }

  /** JSON view: destinations with their callers, most calls first. */
  view(): { destination: string; service: string; callers: ({ identity: string } & CallerCounts)[] }[] {
    return [...this.#byDestination].map(([destination, d]) => ({
      destination,
      service: d.service,
      callers: [...d.callers].map(([identity, c]) => ({ identity, ...c })).sort((a, b) => b.allowed + b.denied - (a.allowed + a.denied)),
    }));
  }
}
