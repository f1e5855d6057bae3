// The graceful drain of a running mesh: announce (inbound listeners serve on, telling peer
// routers this node is draining), then close the listeners with a grace for requests in flight,
// then everything else. The announce waits on the injected Clock, so a test drives it.

import { sleepOn, type Clock } from '../core/clock.js';
import type { Logger } from '../log.js';
import type { AppContext } from './context.js';
import type { RunningRouter } from './routers.js';

/** drainAnnounceMs's default: a peer sending a request a second learns of the drain in time. */
export const DEFAULT_DRAIN_ANNOUNCE_MS = 2_000;

export interface DrainPlan {
  /** Time given to requests in flight once the listeners stop accepting. */
  readonly graceMs: number;
  /** Time the inbound listeners go on serving, answering peers that this node drains (0: none). */
  readonly announceMs: number;
}

/**
 * The drain's times: without arguments (a signal, the admin's shutdown) both come from the config;
 * a caller naming a grace names its own announce (none when omitted).
 */
export function drainPlan(config: AppContext['config'], graceArg?: number, announceArg?: number): DrainPlan {
  return {
    graceMs: graceArg ?? config.shutdownGraceMs,
    announceMs: announceArg ?? (graceArg === undefined ? (config.drainAnnounceMs ?? DEFAULT_DRAIN_ANNOUNCE_MS) : 0),
  };
}

/** Drains the routers' listeners as planned; the caller then closes the rest. */
export async function drainListeners(routers: readonly RunningRouter[], plan: DrainPlan, clock: Clock, logger: Logger): Promise<void> {
  const announcing = routers.flatMap((r) => r.listeners.filter((l) => l.announce()));
  if (plan.announceMs > 0 && announcing.length > 0) {
    logger.info({ announceMs: plan.announceMs }, 'announcing the drain to peer routers');
    await sleepOn(clock, plan.announceMs);
  }
  await Promise.all(routers.flatMap((r) => r.listeners.map((l) => l.close(plan.graceMs))));
}
