// What one request carries through the stages to the rescue point: which way it travels, who sent
// it, and what routing learned on the way (the service, the bound client, the dtabs, the deadline).

import type { Caller } from '../identity/caller.js';
import type { RequestDeadline } from './deadline.js';

/**
 * Which way a request travels through this node, set by the listener that accepted it from its
 * configured `direction`, never guessed from TLS: `outbound` is plaintext from this node's own pods
 * (port 4140), `inbound` is from peer routers (port 4141, mTLS in the shipped config).
 */
export type Direction = 'outbound' | 'inbound';

/**
 * A server's direction: the `direction` key; else the label Linkerd 1 DaemonSet configs give their
 * routers (`outgoing` takes pods' traffic, `incoming` peers'), so a plaintext mesh's incoming
 * router is inbound too; else inbound exactly when the server has TLS.
 */
export function serverDirection(s: { readonly direction?: Direction | undefined; readonly tls?: unknown }, label: string): Direction {
  if (s.direction !== undefined) return s.direction;
  if (label === 'outgoing') return 'outbound';
  if (label === 'incoming') return 'inbound';
  return s.tls !== undefined ? 'inbound' : 'outbound';
}

/** What the stages learned about a request, and what the rescue point needs to explain an error. */
export interface RequestContext {
  /** Set by the listener; absent (a request made by a test or a tool) counts as outbound. */
  direction?: Direction;
  caller?: Caller;
  service?: string;
  /** The bound id the request went to (metrics' client label). */
  client?: string;
  dtab?: string;
  overrides?: string;
  /** The request's effective deadline (deadline.ts): the caller's l5d-ctx-deadline or totalTimeoutMs. */
  deadline?: RequestDeadline;
}

/**
 * A request's context as a listener makes it: every field there from the start, so every request's
 * context has one shape (the stages' property reads stay monomorphic), and made by a constructor,
 * which V8 never pretenures as it may an object literal's allocation site (route-plan.ts, Plan).
 */
export class Context implements RequestContext {
  caller: Caller | undefined = undefined;
  service: string | undefined = undefined;
  client: string | undefined = undefined;
  dtab: string | undefined = undefined;
  overrides: string | undefined = undefined;
  deadline: RequestDeadline | undefined = undefined;

  constructor(public direction: Direction) {}
}
