// What an h2 router adds to a router at startup (hostmesh.ts): its client sessions, its gRPC
// classifier and HTTP/2 forward stage, and a listener per server, from the same config and parts.

import type { Clock } from '../core/clock.js';
import type { RouterConfig, ServerConfig } from '../config/types.js';
import { h2Classifier } from '../router/classifier.js';
import { h2Limits } from '../h2/h2-limits.js';
import { H2Sessions } from '../h2/h2-sessions.js';
import type { Callers } from '../identity/caller.js';
import type { SourceGuard } from '../identity/source-guard.js';
import type { Logger } from '../log.js';
import { h2Metrics, type H2Metrics } from '../metrics/h2-metrics.js';
import type { Metrics, RouterMetricSet } from '../metrics/metrics.js';
import type { Direction } from '../router/context.js';
import type { Router } from '../router/router.js';
import type { H2Forward } from '../router/stages/forward-h2.js';
import { serverTlsOptions, type TlsMaterial } from '../tls/tls-files.js';
import { H2Listener } from './h2-listener.js';

export interface H2Parts {
  readonly sessions: H2Sessions;
  readonly forward: H2Forward;
  readonly metrics: H2Metrics;
}

export function h2Parts(r: RouterConfig, router: Router, metrics: Metrics, rm: RouterMetricSet): H2Parts {
  const sessions = new H2Sessions({
    events: rm.router.pools,
  });
  const rc = r.service?.responseClassifier as { kind?: string; retryableStatusCodes?: number[] } | undefined;
  return { sessions, forward: router.h2Forward(sessions, h2Classifier(rc?.kind, rc?.retryableStatusCodes)), metrics: h2Metrics(metrics, r.label) };
}

export interface H2ServerDeps {
  readonly direction: Direction;
  readonly guard: SourceGuard | undefined;
  readonly callers: Callers;
  readonly rm: RouterMetricSet;
  readonly logger: Logger;
  readonly clock?: Clock | undefined;
  /** The node certificate (identity.issuer), for a TLS block that names no certificate files. */
  readonly node?: TlsMaterial | undefined;
}

export function startH2Listener(router: Router, parts: H2Parts, s: ServerConfig, d: H2ServerDeps): Promise<H2Listener> {
  return new H2Listener(
    router,
    parts.forward,
    {
      direction: d.direction,
      ip: s.ip,
      port: s.port,
      limits: h2Limits(s.h2),
      ...(s.tls ? { tls: serverTlsOptions(s.tls, d.node) } : {}),
      ...(s.idleTimeoutMs !== undefined ? { idleTimeoutMs: s.idleTimeoutMs } : {}),
      ...(s.tls?.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: s.tls.handshakeTimeoutMs } : {}),
      ...(s.maxConnections !== undefined ? { maxConnections: s.maxConnections } : {}),
      ...(s.maxConnectionsPerSource !== undefined ? { maxConnectionsPerSource: s.maxConnectionsPerSource } : {}),
      ...(s.clearContext === true ? { clearContext: true } : {}),
      ...(d.guard !== undefined ? { sourceGuard: d.guard } : {}),
      ...(d.clock !== undefined ? { clock: d.clock } : {}),
      callers: d.callers,
      metrics: d.rm.listener,
      h2Metrics: parts.metrics,
    },
    d.logger,
  ).start();
}
