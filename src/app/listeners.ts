// A router's servers as listeners: HTTP/1.1 (server/listener.ts) or HTTP/2 (server/h2-listener.ts),
// each with its source guard (plaintext outbound ports), its TLS reloaded when its files or the
// node certificate change, and an h2 router's client sessions and gRPC classifier.

import type { RouterConfig, ServerConfig } from '../config/types.js';
import { h2Limits } from '../h2/h2-limits.js';
import { H2Sessions } from '../h2/h2-sessions.js';
import { Callers } from '../identity/caller.js';
import { SourceGuard } from '../identity/source-guard.js';
import { h2Metrics, type H2Metrics } from '../metrics/h2-metrics.js';
import type { Metrics, RouterMetricSet } from '../metrics/metrics.js';
import { serverDirection } from '../router/context.js';
import type { Router } from '../router/router.js';
import type { H2Forward } from '../router/stages/forward/forward-h2.js';
import type { AccessLog } from '../server/access-log.js';
import { H2Listener } from '../server/h2-listener.js';
import { DEFAULT_SERVER_ENGINE, Listener } from '../server/listener.js';
import { leanServerAvailable } from '../server/h1-server.js';
import { serverTlsFiles, serverTlsOptions } from '../tls/tls-files.js';
import { watchTls } from '../tls/reload.js';
import type { AppContext } from './context.js';

export interface H2Parts {
  readonly sessions: H2Sessions;
  readonly forward: H2Forward;
  readonly metrics: H2Metrics;
}

/** What an h2 router adds to a router: its client sessions, its gRPC classifier and HTTP/2 forward stage. */
export function h2Parts(r: RouterConfig, router: Router, metrics: Metrics, rm: RouterMetricSet): H2Parts {
  const sessions = new H2Sessions({ events: rm.router.pools });
  // The classifier is the service's, per name (router/settings/per-name.ts h2ClassifierOf).
  return { sessions, forward: router.h2Forward(sessions), metrics: h2Metrics(metrics, r.label) };
}

/** Starts one listener per server of the router; each is added to ctx.started as soon as it listens. */
export async function startListeners(ctx: AppContext, r: RouterConfig, router: Router, accessLog: AccessLog | undefined): Promise<(Listener | H2Listener)[]> {
  const { logger, metrics, deps, nodeCert, closers } = ctx;
  const rm = metrics.router(r.label);
  const listeners: (Listener | H2Listener)[] = [];
  // protocol: h2: client sessions and the HTTP/2 forward stage over the same router.
  const h2 = r.protocol === 'h2' ? h2Parts(r, router, metrics, rm) : undefined;
  if (h2 !== undefined) closers.push(() => void h2.sessions.close());
  const identity = ctx.config.identity;
  const callers = new Callers({
    trustDomain: ctx.trustDomain,
    pods: ctx.podSource.pods,
    verifyClaims: ctx.podSource.verify,
    ...(identity?.claimWaitMs !== undefined ? { claimWaitMs: identity.claimWaitMs } : {}),
    ...(identity?.maxClaimWaits !== undefined ? { maxClaimWaits: identity.maxClaimWaits } : {}),
    events: rm.callers,
  });
  for (const s of r.servers) {
    const direction = serverDirection(s, r.label);
    const guard = sourceGuard(ctx, r, s, direction);
    if (direction === 'inbound' && s.tls === undefined) {
      logger.warn({ router: r.label, port: s.port }, 'inbound server without TLS: peers are not authenticated, so no l5d-client-id and no workload claims');
    }
    if (s.tls !== undefined && !s.tls.requireClientAuth) {
      logger.warn({ router: r.label, port: s.port }, 'TLS without requireClientAuth: peers are not verified');
    }
    if (h2 !== undefined && s.engine !== undefined) {
      logger.warn({ router: r.label, port: s.port }, 'servers[].engine is for HTTP/1.1 routers and is ignored here: an h2 router serves with node:http2');
    } else if (h2 === undefined && (s.engine ?? DEFAULT_SERVER_ENGINE) === 'lean' && !leanServerAvailable()) {
      logger.warn(
        { router: r.label, port: s.port },
        "servers[].engine lean needs Node's HTTP parser binding (_http_common), which this Node lacks: Node's http.Server serves this port instead (more CPU per request; README, engine)",
      );
    }
    const l =
      h2 !== undefined
        ? await new H2Listener(
            router,
            h2.forward,
            {
              direction,
              ip: s.ip,
              port: s.port,
              limits: h2Limits(s.h2),
              ...(s.tls ? { tls: serverTlsOptions(s.tls, nodeCert?.current) } : {}),
              ...(s.idleTimeoutMs !== undefined ? { idleTimeoutMs: s.idleTimeoutMs } : {}),
              ...(s.tls?.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: s.tls.handshakeTimeoutMs } : {}),
              ...(s.maxConnections !== undefined ? { maxConnections: s.maxConnections } : {}),
              ...(s.maxConnectionsPerSource !== undefined ? { maxConnectionsPerSource: s.maxConnectionsPerSource } : {}),
              ...(s.clearContext === true ? { clearContext: true } : {}),
              ...(guard !== undefined ? { sourceGuard: guard } : {}),
              ...(deps.clock !== undefined ? { clock: deps.clock } : {}),
              callers,
              metrics: rm.listener,
              h2Metrics: h2.metrics,
            },
            logger,
          ).start()
        : await new Listener(
            router,
            {
              direction,
              ip: s.ip,
              port: s.port,
              ...(s.tls ? { tls: serverTlsOptions(s.tls, nodeCert?.current) } : {}),
              ...(s.headersTimeoutMs !== undefined ? { headersTimeoutMs: s.headersTimeoutMs } : {}),
              ...(s.idleTimeoutMs !== undefined ? { idleTimeoutMs: s.idleTimeoutMs } : {}),
              ...(s.maxHeaderBytes !== undefined ? { maxHeaderSize: s.maxHeaderBytes } : {}),
              ...(s.tls?.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: s.tls.handshakeTimeoutMs } : {}),
              ...(s.tls?.maxPendingHandshakes !== undefined ? { maxPendingHandshakes: s.tls.maxPendingHandshakes } : {}),
              ...(s.tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: s.tunnelIdleTimeoutMs } : {}),
              ...(s.maxConnections !== undefined ? { maxConnections: s.maxConnections } : {}),
              ...(s.maxConnectionsPerSource !== undefined ? { maxConnectionsPerSource: s.maxConnectionsPerSource } : {}),
              ...(s.maxHeaders !== undefined ? { maxHeaders: s.maxHeaders } : {}),
              ...(s.maxPipelinedRequests !== undefined ? { maxPipelinedRequests: s.maxPipelinedRequests } : {}),
              ...(s.engine !== undefined ? { engine: s.engine } : {}),
              ...(s.clearContext === true ? { clearContext: true } : {}),
              ...(guard !== undefined ? { sourceGuard: guard } : {}),
              ...(accessLog !== undefined ? { accessLog } : {}),
              callers,
              metrics: rm.listener,
            },
            logger,
          ).start();
    ctx.started.push(l);
    listeners.push(l);
    const serverTls = s.tls;
    if (serverTls !== undefined) {
      closers.push(
        watchTls(
          serverTlsFiles(serverTls),
          () => l.setSecureContext(serverTlsOptions(serverTls, nodeCert?.current)),
          `router ${r.label} server :${s.port}`,
          metrics.identity,
          logger,
          deps.tlsPollMs,
        ),
      );
      if (nodeCert !== undefined && serverTls.certPath === undefined) {
        closers.push(nodeCert.onChange((c) => l.setSecureContext(serverTlsOptions(serverTls, c))));
      }
    }
    logger.info({ router: r.label, address: l.address, direction, ...(h2 !== undefined ? { protocol: 'h2' } : {}) }, 'router listening');
  }
  return listeners;
}

/**
 * The outbound port serves this node's pods, the node and loopback, and the configured CIDRs; an
 * inbound (mTLS) port is guarded by its client certificates instead.
 */
function sourceGuard(ctx: AppContext, r: RouterConfig, s: ServerConfig, direction: 'outbound' | 'inbound'): SourceGuard | undefined {
  if (direction !== 'outbound' || s.localSourcesOnly === false) return undefined;
  const guard = new SourceGuard({
    nodeName: ctx.config.nodeName ?? '',
    pods: ctx.podSource.pods,
    nodeAddresses: ctx.ownAddresses,
    ...(s.allowedSourceCidrs !== undefined ? { extraCidrs: s.allowedSourceCidrs } : {}),
    ...(s.sourceWaitMs !== undefined ? { waitMs: s.sourceWaitMs } : {}),
    observe: (ip) => void ctx.snat.observe(ip),
  });
  if (!ctx.podSource.verify) {
    ctx.logger.warn(
      { router: r.label, port: s.port },
      "no pod watch (no io.l5d.k8s namer, or identity.podWatch: false): this plaintext port admits only loopback, the node's addresses and allowedSourceCidrs",
    );
  }
  return guard;
}
