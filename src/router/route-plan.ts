// The plan of one request's route, made once by the stages (identify -> logical -> concrete, then
// authorization) and carried out by whichever protocol path the request takes: HTTP, Upgrade, CONNECT.

import type { OutgoingHttpHeaders } from 'node:http';
import type { ConnectionOptions } from 'node:tls';
import type { Path } from '../dtab/path.js';
import type { BoundName, Endpoint } from '../namer/addr.js';
import type { RequestDeadline } from './deadline.js';

export interface RoutePlan {
  readonly method: string;
  /** The logical name (/svc/<host>): retries and their budget are per service. */
  readonly service: Path;
  /** The bound name the request goes to: its id is the client (requeue budget, failure accrual). */
  readonly name: BoundName;
  /** The endpoint chosen first. */
  readonly endpoint: Endpoint;
  /** Another endpoint of the same client, none of `exclude` (endpoint keys) when that is possible. */
  readonly another: (exclude: ReadonlySet<string>) => Endpoint | undefined;
  /** The origin-form target to send. */
  readonly target: string;
  /** The headers to send: the router's own (Host, Via, l5d-*), then the client's end-to-end ones. */
  readonly headers: OutgoingHttpHeaders;
  readonly deadline: RequestDeadline | undefined;
  /** Whether connections to the endpoints are TLS (a peer router over mTLS, or a per-prefix TLS client). */
  readonly tls: boolean;
  /** The client's TLS options when `tls` (the router's, or an io.l5d.static prefix's): what an Upgrade connects with. */
  readonly tlsOptions: ConnectionOptions | undefined;
  /** The client's connect bound (client.connectTimeoutMs): what an Upgrade's own connect waits at most. */
  readonly connectTimeoutMs: number;
}

/**
 * A RoutePlan made by a constructor, not an object literal: V8 may decide, under load, that a
 * literal's allocation site makes long-lived objects and allocate it in the old generation from
 * then on, where a per-request object is garbage only the full collections take; an object made by
 * `new` is never allocated there (docs/perf-notes.md, "Session 12").
 */
export class Plan implements RoutePlan {
  constructor(
    readonly method: string,
    readonly service: Path,
    readonly name: BoundName,
    readonly endpoint: Endpoint,
    readonly another: (exclude: ReadonlySet<string>) => Endpoint | undefined,
    readonly target: string,
    readonly headers: OutgoingHttpHeaders,
    readonly deadline: RequestDeadline | undefined,
    readonly tls: boolean,
    readonly tlsOptions: ConnectionOptions | undefined,
    readonly connectTimeoutMs: number,
  ) {}
}
