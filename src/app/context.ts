// What the composition root shares with its parts while it starts a mesh: the config, the
// process-wide objects (metrics, interpreter, pods, node certificate), and the lists of what was
// started, so a failure part-way closes everything and the drain finds everything.

import type { HostmeshConfig } from '../config/types.js';
import type { PolicyWatcher } from '../authz/policy-watcher.js';
import type { SnatDetector } from '../identity/snat-detector.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NameInterpreter } from '../namer/interpreter.js';
import type { EndpointPools } from '../router/stages/endpoint/endpoint-pool.js';
import type { AccessLog } from '../server/access-log.js';
import type { DtabWatcher } from '../server/dtab-watcher.js';
import type { H2Listener } from '../server/h2-listener.js';
import type { Listener } from '../server/listener.js';
import type { TlsMaterial } from '../tls/tls-files.js';
import type { NodeCertificate } from '../tls/node-certificate.js';
import type { HostmeshDeps } from './deps.js';
import type { PodSource } from './node.js';

export interface AppContext {
  readonly config: HostmeshConfig;
  readonly deps: HostmeshDeps;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly interpreter: NameInterpreter;
  readonly podSource: PodSource;
  readonly ownAddresses: () => Iterable<string>;
  readonly snat: SnatDetector;
  readonly trustDomain: string;
  /** The first io.l5d.k8s namer's prefix (bound names under it name namespaces and services). */
  readonly k8sPrefix: string;
  readonly policyWatcher: PolicyWatcher | undefined;
  /** The node certificate from identity.issuer, when configured. */
  readonly nodeCert: NodeCertificate | undefined;
  /** What a client TLS block without clientAuth files presents: the node certificate, when there is one. */
  readonly nodeTls: () => { material: TlsMaterial | undefined; trustDomain: string } | undefined;
  /** Run at close (and when the start fails part-way). */
  readonly closers: (() => void)[];
  readonly started: (Listener | H2Listener)[];
  readonly pools: EndpointPools[];
  readonly dtabWatchers: Map<string, DtabWatcher>;
  readonly accessLogs: Map<string, AccessLog>;
}
