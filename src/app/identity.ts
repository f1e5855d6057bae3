// Wires identity.issuer into a running hostmesh: the node certificate (tls/node-certificate.ts)
// is made when the config asks for it, and every TLS block that names no certificate files takes
// it, the new one applied to new connections at each renewal.

import type { Clock } from '../core/clock.js';
import type { HostmeshConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { NodeCertificate } from '../tls/node-certificate.js';

/** The node certificate config.identity.issuer asks for (not started), or undefined. */
export function nodeCertificateFor(config: HostmeshConfig, metrics: Metrics, logger: Logger, clock?: Clock): NodeCertificate | undefined {
  const issuer = config.identity?.issuer;
  if (issuer === undefined) return undefined;
  const nodeName = config.nodeName ?? process.env['NODE_NAME'] ?? '';
  if (nodeName === '') throw new Error('identity.issuer needs the node name: set nodeName in the config or NODE_NAME (downward API spec.nodeName)');
  return new NodeCertificate({
    url: issuer.url,
    tokenFile: issuer.tokenFile,
    trustBundle: issuer.trustBundle,
    ...(issuer.serverName !== undefined ? { serverName: issuer.serverName } : {}),
    trustDomain: config.identity?.trustDomain ?? 'cluster.local',
    nodeName,
    ...(issuer.renewFraction !== undefined ? { renewFraction: issuer.renewFraction } : {}),
    ...(issuer.retryMinMs !== undefined ? { retryMinMs: issuer.retryMinMs } : {}),
    ...(issuer.retryMaxMs !== undefined ? { retryMaxMs: issuer.retryMaxMs } : {}),
    ...(issuer.requestTimeoutMs !== undefined ? { requestTimeoutMs: issuer.requestTimeoutMs } : {}),
    logger: logger.child({ identity: 'node-certificate' }),
    registry: metrics.registry,
    ...(clock !== undefined ? { clock } : {}),
  });
}
