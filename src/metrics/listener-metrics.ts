// What listeners report (server/events.ts ListenerEvents): connections and bytes, verified peers,
// TLS failures, refused connections, connection deadlines, header and pipeline limits; requests
// answered go to the router's request table (request-metrics.ts).

import { Counter, type Registry } from 'prom-client';
import { children, MAX_SERVICES } from './labels.js';
import type { RequestMetrics } from './request-metrics.js';

/** The listener families, once per registry. */
export class ListenerFamilies {
  readonly connections: Counter;
  readonly connectionsClosed: Counter;
  readonly bytes: Counter;
  readonly tlsFailures: Counter;
  readonly connectionsRefused: Counter;
  readonly connectionDeadlines: Counter;
  readonly headerLimitRefusals: Counter;
  readonly pipelinePaused: Counter;
  readonly pipelineDropped: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connections = new Counter({
      name: 'hostmesh_connections_total',
      help: 'Connections opened (server: accepted; client: to endpoints).',
      labelNames: ['router', 'side'],
      registers,
    });
    this.connectionsClosed = new Counter({ name: 'hostmesh_connections_closed_total', help: 'Connections closed.', labelNames: ['router', 'side'], registers });
    this.bytes = new Counter({
      name: 'hostmesh_bytes_total',
      help: 'Bytes received from (in) and sent to (out) clients, counted when a connection closes.',
      labelNames: ['router', 'direction'],
      registers,
    });
    this.tlsFailures = new Counter({
      name: 'hostmesh_tls_handshake_failures_total',
      help: 'TLS handshakes refused, by reason.',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'hostmesh_connections_refused_total',
      help: 'Accepted connections closed at once because the listener (listener_limit) or the source (source_limit) was at its cap, or an unfinished TLS handshake of the source holding most closed over their cap (handshake_limit), or the outgoing port refused a source that is no pod of this node (not_local: a pod of another node; unknown_source: no pod at all; too_many_waiting: too many unknown sources waiting for the pod watch).',
      labelNames: ['router', 'reason'],
      registers,
    });
    this.connectionDeadlines = new Counter({
      name: 'hostmesh_connection_deadlines_total',
      help: 'Connections closed because the deadline of their state passed (handshake, headers, idle, tunnel_idle, error_answer).',
      labelNames: ['router', 'state'],
      registers,
    });
    this.headerLimitRefusals = new Counter({
      name: 'hostmesh_header_limit_refusals_total',
      help: 'Requests refused with 431: more header fields than the server keeps (maxHeaders).',
      labelNames: ['router'],
      registers,
    });
    this.pipelinePaused = new Counter({
      name: 'hostmesh_pipeline_paused_total',
      help: 'Times a connection was no longer read because maxPipelinedRequests of its pipelined requests were queued.',
      labelNames: ['router'],
      registers,
    });
    this.pipelineDropped = new Counter({
      name: 'hostmesh_pipeline_dropped_total',
      help: 'Queued pipelined requests dropped without being sent because their connection closed.',
      labelNames: ['router'],
      registers,
    });
  }
}

type Side = 'server' | 'client';

/** One router's listeners as metrics (implements server/events.ts ListenerEvents). */
export class ListenerMetrics {
  connectionsOpen = { server: 0, client: 0 };
  /** Verified peer routers (client certificate identity) on this router's TLS servers. */
  readonly peers = new Map<string, { connections: number; total: number; lastSeen: number }>();
  readonly #requests: RequestMetrics;
  readonly #now: () => number;
  readonly #connections: Record<Side, Counter.Internal>;
  readonly #closed: Record<Side, Counter.Internal>;
  readonly #bytesIn: Counter.Internal;
  readonly #bytesOut: Counter.Internal;
  readonly #tlsFailures: (reason: string) => Counter.Internal;
  readonly #refused: (reason: string) => Counter.Internal;
  readonly #deadlines: (state: string) => Counter.Internal;
  readonly #tooManyHeaders: Counter.Internal;
  readonly #paused: Counter.Internal;
  readonly #dropped: Counter.Internal;

  constructor(
    readonly label: string,
    f: ListenerFamilies,
    requests: RequestMetrics,
    now: () => number = Date.now,
  ) {
    this.#requests = requests;
    this.#now = now;
    this.#connections = { server: f.connections.labels(label, 'server'), client: f.connections.labels(label, 'client') };
    this.#closed = { server: f.connectionsClosed.labels(label, 'server'), client: f.connectionsClosed.labels(label, 'client') };
    this.#bytesIn = f.bytes.labels(label, 'in');
    this.#bytesOut = f.bytes.labels(label, 'out');
    this.#tlsFailures = children((v) => f.tlsFailures.labels(label, v));
    this.#refused = children((v) => f.connectionsRefused.labels(label, v));
    this.#deadlines = children((v) => f.connectionDeadlines.labels(label, v));
    this.#tooManyHeaders = f.headerLimitRefusals.labels(label);
    this.#paused = f.pipelinePaused.labels(label);
    this.#dropped = f.pipelineDropped.labels(label);
  }

  started(): void {
    this.#requests.started();
  }

  done(service: string | undefined, client: string | undefined, status: number, seconds: number, server?: string): void {
    this.#requests.done(service, client, status, seconds, server);
  }

  connectionOpened(side: Side): void {
    this.#connections[side].inc();
    this.connectionsOpen[side]++;
  }

  connectionClosed(side: Side, bytesIn: number, bytesOut: number): void {
    this.#closed[side].inc();
    this.connectionsOpen[side]--;
    if (side === 'server') {
      this.#bytesIn.inc(bytesIn);
      this.#bytesOut.inc(bytesOut);
    }
  }

  peerConnected(identity: string): void {
    let p = this.peers.get(identity);
    if (p === undefined) {
      // Bounded like services: identities are per node, so this is the cluster's node count.
      if (this.peers.size >= MAX_SERVICES) return;
      p = { connections: 0, total: 0, lastSeen: 0 };
      this.peers.set(identity, p);
    }
    p.connections++;
    p.total++;
    p.lastSeen = this.#now();
  }

  peerDisconnected(identity: string): void {
    const p = this.peers.get(identity);
    if (p === undefined) return;
    p.connections = Math.max(0, p.connections - 1);
    p.lastSeen = this.#now();
  }

  /** `reason` is from a closed set written in the listeners. */
  tlsFailure(reason: string): void {
    this.#tlsFailures(reason).inc();
  }

  connectionRefused(reason: string): void {
    this.#refused(reason).inc();
  }

  connectionDeadline(state: string): void {
    this.#deadlines(state).inc();
  }

  tooManyHeaders(): void {
    this.#tooManyHeaders.inc();
  }

  pipelinePaused(): void {
    this.#paused.inc();
  }

  pipelineDropped(n: number): void {
    this.#dropped.inc(n);
  }
}
