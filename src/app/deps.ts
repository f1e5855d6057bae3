// What the composition root takes from its caller (the CLI, the demo, tests) besides the config:
// the logger, test hooks, and the clocks.

import type { HostmeshConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { BackoffOptions } from '../k8s/backoff.js';
import type { Logger } from '../log.js';
import type { Namer } from '../namer/addr.js';
import type { PodDirectory } from '../identity/pod-directory.js';

export interface HostmeshDeps {
  readonly logger: Logger;
  /** Extra namers (tests), or factories for kinds this module does not build itself. */
  readonly namers?: readonly Namer[];
  readonly namerFactory?: (cfg: HostmeshConfig['namers'][number], logger: Logger) => Namer | undefined;
  /** Poll interval of dtabFile watching (tests shorten it). */
  readonly dtabPollMs?: number;
  /** A reloaded dtabFile was rejected (router label, file:line:col message). */
  readonly onDtabReject?: (router: string, message: string) => void;
  /** Poll interval of certificate file watching (tests shorten it). */
  readonly tlsPollMs?: number;
  /** Reconnect backoff of Kubernetes watches (tests shorten it). */
  readonly k8sBackoff?: BackoffOptions;
  /** The one clock of the mesh: idle eviction, deadlines, accrual, waits, renewals, the drain's announce (tests drive it; default systemClock). */
  readonly clock?: Clock;
  /** The cluster's pods (the demo and tests give a fixed list); else a pod watch when configured. */
  readonly pods?: PodDirectory;
  /** How long a namerd interpreter waits for its dtab's first list at start (default 30 s). */
  readonly namerdStartMs?: number;
  /** The environment (NODE_NAME, POD_IP, HOSTNAME, POD_NAMESPACE); process.env by default. */
  readonly env?: NodeJS.ProcessEnv;
  /** The node certificate's clock when it must differ from the mesh's (tests that move days of renewals while requests run on real time). */
  readonly identityClock?: Clock;
  /** false: open no admin port (a `workers: N` worker other than worker 0; docs/cores.md). */
  readonly adminListener?: boolean;
  /** What the admin's /admin/shutdown does instead of this process's drain (a worker asks the primary to drain every worker). */
  readonly shutdown?: () => Promise<void>;
}
