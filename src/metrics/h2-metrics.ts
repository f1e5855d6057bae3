// The HTTP/2 and gRPC metrics of h2 routers, on the process's registry: answers by gRPC status and
// sessions the router ended (GOAWAY) by reason. Label sets are bounded (services past a cap: overflow).

import { Counter } from 'prom-client';
import type { H2Events } from '../h2/events.js';
import { children } from './labels.js';
import type { Metrics } from './metrics.js';

/** Services named in gRPC metrics, per router; the rest count as `overflow`. */
const MAX_SERVICES = 100;

export type { SessionEnd } from '../h2/events.js';

interface H2Counters {
  readonly grpc: Counter;
  readonly sessions: Counter;
  readonly services: Map<string, Set<string>>;
}

const byRegistry = new WeakMap<Metrics, H2Counters>();

function counters(m: Metrics): H2Counters {
  let c = byRegistry.get(m);
  if (c === undefined) {
    const registers = [m.registry];
    c = {
      grpc: new Counter({
        name: 'hostmesh_grpc_responses_total',
        help: "gRPC calls answered by h2 routers, by logical service and grpc-status name (the router's own errors included).",
        labelNames: ['router', 'service', 'grpc_status'],
        registers,
      }),
      sessions: new Counter({
        name: 'hostmesh_h2_sessions_ended_total',
        help: 'HTTP/2 sessions an h2 router ended itself (GOAWAY), by reason: rapid_reset, idle, drain, protocol_error, session_memory.',
        labelNames: ['router', 'reason'],
        registers,
      }),
      services: new Map(),
    };
    byRegistry.set(m, c);
  }
  return c;
}

/** One h2 router's events as metrics (h2/events.ts H2Events). */
export type H2Metrics = H2Events;

export function h2Metrics(m: Metrics, router: string): H2Metrics {
  const c = counters(m);
  let seen = c.services.get(router);
  if (seen === undefined) {
    seen = new Set();
    c.services.set(router, seen);
  }
  const known = seen;
  const ended = children((reason) => c.sessions.labels(router, reason));
  return {
    grpcAnswered(service, status) {
      let s = service ?? '-';
      if (!known.has(s)) {
        if (known.size >= MAX_SERVICES) s = 'overflow';
        else known.add(s);
      }
      c.grpc.labels(router, s, status).inc();
    },
    sessionEnded(reason) {
      ended(reason).inc();
    },
  };
}
