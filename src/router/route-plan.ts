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
