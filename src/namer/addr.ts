// Addresses as namers publish them: the state of a bound name's endpoint set, and the
// bound name (id + residual path + changing addresses) that a dtab leaf binds to.

import type { Path } from '../dtab/path.js';
import type { NameTree } from '../dtab/name-tree.js';
import type { Var } from './var.js';

export interface EndpointMeta {
  /** The Kubernetes node the endpoint runs on (EndpointSlice `nodeName`); drives the transformers. */
  readonly nodeName?: string;
  readonly zone?: string;
  readonly [key: string]: string | undefined;
}

export interface Endpoint {
  /** IPv4, IPv6 (no brackets) or a host name. */
  readonly host: string;
  readonly port: number;
  readonly meta: EndpointMeta;
}

export type Addr =
  | { readonly kind: 'pending' }
  | { readonly kind: 'bound'; readonly endpoints: readonly Endpoint[]; readonly stale?: boolean }
  | { readonly kind: 'neg' }
  | { readonly kind: 'failed'; readonly error: Error };

/** A name bound by a namer: `id` is what `l5d-dst-client` shows, e.g. /#/io.l5d.k8s/default/http/world. */
export interface BoundName {
  readonly id: Path;
  /** What is left of the path after the namer consumed its part (Finagle's residual). */
  readonly residual: Path;
  readonly addr: Var<Addr>;
}

/**
 * A transformer on a bound name's endpoints (Linkerd 1's `transformers`: daemonset, localnode, ...;
 * the router's transformers.ts makes them). `name`: the bound name whose endpoints these are (the
 * delivery check reads its namespace).
 */
export type EndpointTransform = (endpoints: readonly Endpoint[], name?: BoundName) => { endpoints: Endpoint[]; why?: string };

/** The state of a namer lookup or of a whole binding (Finagle's Activity). */
export type Lookup =
  | { readonly kind: 'pending' }
  | { readonly kind: 'ok'; readonly tree: NameTree<BoundName> }
  | { readonly kind: 'failed'; readonly error: Error };

/**
 * A namer resolves the part of a path after its prefix (e.g. after `/#/io.l5d.fs`) into a tree of
 * bound names that changes over time. Missing names are `{kind:'ok', tree: NEG}` so dtab
 * alternations fall through. Calling `lookup` twice for the same path may share state.
 */
export interface Namer {
  /** The namer's kind as configured, e.g. `io.l5d.k8s`. */
  readonly kind: string;
  /** The prefix it is mounted at, e.g. /#/io.l5d.k8s (the kind by default). */
  readonly prefix: Path;
  lookup(path: Path): Var<Lookup>;
  /**
   * A rewriting namer (Linkerd 1's io.l5d.rewrite) turns the path after its prefix into another
   * path that is delegated again through the dtab; undefined when it does not match (neg).
   * When present, `lookup` is not called.
   */
  rewrite?(path: Path): Path | undefined;
  close?(): Promise<void> | void;
  /**
   * Operational hooks, each optional: the composition root (app/hostmesh.ts) wires what a
   * namer has, without knowing its class.
   */
  /** Drops names nobody observed for the idle TTL (idle timers call it too). */
  evictIdle?(): void;
  /** State kept from request data, read at scrape time (metrics). */
  stats?(): NamerStats;
  /** A JSON view for /namer_state/<kind>.json. */
  stateJson?(): object;
  /**
   * Readiness for what the config itself needs, captured when called (at start): a request that
   * names more later never makes the router unready.
   */
  startupReadiness?(): () => boolean;
  /** Updates applied and whether the source is stale (hostmesh_namer_updates_total, the dashboard). */
  readonly updates?: number;
  readonly stale?: boolean;
}

/** Counts a namer reports at scrape time. */
export interface NamerStats {
  readonly entries: number;
  readonly evictions: number;
  /** Kubernetes namespaces watched now, and names refused for the namespace cap. */
  readonly namespaces?: number;
  readonly refused?: number;
  /** Endpoint addresses refused from discovery data, and rebuilds cut at maxEndpointsPerService. */
  readonly addressesRefused?: number;
  readonly endpointsCapped?: number;
}

/** `host:port`, an IPv6 literal in brackets (RFC 3986 authority): how endpoints are keyed and printed. */
export function endpointKey(e: { readonly host: string; readonly port: number }): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}
