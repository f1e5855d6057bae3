// Stage 5 for an HTTP/1 Upgrade (WebSocket and others), through the one attempt loop (attempts.ts:
// the request's deadline and attempt timeout, requeues within the client's budget, the endpoint's
// lease and failure accrual). Each attempt is an undici request that connects exactly as the
// endpoint's pool does (its PoolEntry's connect options: TLS, secure context, client.connectTimeoutMs;
// the client's servername; its headers and body timeouts). A 101 hands over the endpoint's socket and
// the bytes flow both ways; any other answer is relayed as it came.
//
// Why a one-shot undici Client on the pool's connector rather than the Pool itself: undici puts an
// aborted in-flight request back at the head of its client's queue and connects again for it
// (measured: undici 7.30), so an upgrade cancelled at its deadline would leave a new idle connection
// to the app. A one-shot client is destroyed instead. An upgraded connection leaves a pool anyway.

import { AbortEvent, type AbortEvents } from '../../../core/abort.js';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { type Duplex, PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Client } from '../../../core/undici.js';
import { HostmeshError } from '../../../errors.js';
import type { RequestContext } from '../../context.js';
import { DRAINING_HEADER } from '../concrete/draining-peers.js';
import { type ClientLimits, endpointKey, type PoolEntry } from '../endpoint/endpoint-pool.js';
import { isHopByHop } from '../../headers.js';
import { REQUEUE_HEADER, requeueReason } from './requeue.js';
import type { RoutePlan } from '../../route-plan.js';
import { type Attempt, type Exchange, type ForwardOptions, forwardAttempts, scopeOf } from './attempts.js';

/** An Upgrade as the HTTP server handed it over. */
export interface UpgradeRequest {
  /** The Upgrade field's value: the protocol asked for (e.g. websocket). */
  readonly protocol: string;
  /** The client's connection, no longer the HTTP server's. */
  readonly socket: Duplex;
  /** Bytes the client sent after the request head: the tunnel's first. */
  readonly head: Buffer;
}

/** The endpoint's answer to the upgrade request: its socket on a 101, else a response to relay. */
interface UpgradeAnswer {
  readonly status: number;
  readonly rawHeaders: Buffer[];
  /** The endpoint's connection after its 101, taken out of the pool. */
  readonly upstream?: Duplex;
  /** The body of any other answer. */
  readonly body?: PassThrough;
  /** Drops the answer: its connection is closed (a requeued answer's, one the client left). */
  cancel(): void;
}

/**
 * Carries out an Upgrade's plan: resolves once the tunnel is open or the endpoint's answer is
 * relayed (or the client left); throws the catalog error when no answer came. Each attempt holds a
 * lease on its endpoint (the balancer's load, failure accrual's probe) until the endpoint answers;
 * it takes no admission slot, since a tunnel may stay open for hours and the pool's slots bound
 * requests in flight. An Upgrade is never retried (it is not replayable once answered), but an
 * attempt that reached no app is requeued like any request's.
 */
export async function forwardUpgrade(o: ForwardOptions, u: UpgradeRequest, plan: RoutePlan, ctx: RequestContext): Promise<void> {
  const scope = scopeOf(o, plan);
  const servername = scope.pools.tlsOptions?.servername;
  const client = u.socket;
  const abort = new AbortEvent();
  const onGone = (): void => void abort.emit('abort');
  client.once('close', onGone);
  const exchange: Exchange<UpgradeAnswer, void> = {
    source: undefined,
    admitted: false,
    retries: false,
    reportsClass: false,
    replayable: () => true,
    gone: () => client.destroyed,
    left: () => undefined,
    timeoutRetryable: () => false,
    send: (_endpoint, lease, signal) => dispatchUpgrade(lease.entry, scope.pools.limits, plan, u.protocol, servername, signal),
    discard: (answer) => {
      answer.cancel();
    },
    relay: async (answer) => relayUpgrade(client, answer, u.head),
    failure: (f, endpoint) => {
      if (f.code === 'UND_ERR_CONNECT_TIMEOUT') {
        o.events.timeout('connect', scope.service);
        return new HostmeshError('CONNECT_FAILED', `upgrade failed: timed out connecting to ${endpointKey(endpoint)}`, { cause: f.err });
      }
      return new HostmeshError('CONNECT_FAILED', `upgrade failed: ${f.err.message}`, { cause: f.err });
    },
  };
  try {
    await forwardAttempts(o, plan, ctx, scope, abort, exchange);
  } finally {
    client.off('close', onGone);
  }
}

/**
 * One upgrade request on the endpoint's pool, settled at the endpoint's answer (a 101 or any final
 * status), its failure, or `signal` (a deadline, the client gone: the request is cancelled).
 */
function dispatchUpgrade(
  entry: PoolEntry,
  limits: ClientLimits,
  plan: RoutePlan,
  protocol: string,
  servername: string | undefined,
  signal: AbortEvents,
): Promise<Attempt<UpgradeAnswer>> {
  const client = new Client(entry.origin, {
    connect: entry.connect,
    headersTimeout: limits.headersTimeoutMs,
    bodyTimeout: limits.bodyIdleTimeoutMs,
    keepAliveTimeout: 1,
  });
  // Its one request is over (upgraded, answered, failed): the client holds no connection after it.
  const done = (): void => void client.close().catch(() => undefined);
  const destroy = (): void => void client.destroy().catch(() => undefined);
  return new Promise((resolve) => {
    let settled = false;
    let cancel: ((err: Error) => void) | undefined;
    let body: PassThrough | undefined;
    const settle = (a: Attempt<UpgradeAnswer>): boolean => {
      if (settled) return false;
      settled = true;
      signal.off('abort', onAbort);
      resolve(a);
      return true;
    };
    const aborted = (): Error => Object.assign(new Error('upgrade request cancelled'), { code: 'UND_ERR_ABORTED' });
    const onAbort = (): void => {
      if (!settle({ kind: 'aborted' })) return;
      cancel?.(aborted());
      destroy(); // the connection (or the connect) goes with it
    };
    signal.once('abort', onAbort);
    const handler: Dispatcher.DispatchHandler = {
      onConnect(abort) {
        if (settled) abort(aborted());
        else cancel = abort;
      },
      onHeaders(status, rawHeaders, resume) {
        if (status < 200) return true; // an informational answer: the final one follows
        const out = new PassThrough();
        out.on('drain', () => resume());
        out.on('error', () => undefined); // a body cut short: the client's connection is ended by relayUpgrade
        body = out;
        const raw = rawHeaders as Buffer[];
        const answer: UpgradeAnswer = {
          status,
          rawHeaders: raw,
          body: out,
          cancel: () => {
            out.destroy();
            destroy();
          },
        };
        if (!settle({ kind: 'answer', answer, head: headObject(raw), cls: status < 500 ? 'success' : 'failure' })) return false;
        return true;
      },
      onData(chunk) {
        return body === undefined ? true : body.write(chunk);
      },
      onComplete() {
        body?.end();
        done();
      },
      onUpgrade(status, rawHeaders, socket) {
        const raw = rawHeaders as Buffer[];
        const answer: UpgradeAnswer = { status, rawHeaders: raw, upstream: socket, cancel: () => socket.destroy() };
        if (!settle({ kind: 'answer', answer, head: headObject(raw), cls: 'success' })) socket.destroy();
        done();
      },
      onError(err) {
        const code = (err as { code?: string }).code ?? '';
        if (!settle({ kind: 'failed', code, err, requeue: requeueReason(code, plan.method) })) body?.destroy(err);
        destroy();
      },
    };
    try {
      client.dispatch(
        {
          method: plan.method as Dispatcher.HttpMethod,
          path: plan.target,
          headers: plan.headers as Record<string, string | string[]>,
          upgrade: protocol,
          ...(servername !== undefined ? ({ servername } as object) : {}),
        },
        handler,
      );
    } catch (err) {
      // undici refused the request before sending it (its fields): nothing reached the endpoint.
      destroy();
      const code = (err as { code?: string }).code ?? '';
      settle({ kind: 'failed', code, err: err as Error, requeue: requeueReason(code, plan.method) });
    }
  });
}

/** The answer's fields as an object (lower-case names), for the requeue and draining marks. */
function headObject(raw: Buffer[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
  return out;
}

/**
 * Relays the endpoint's answer on the client's connection. A 101 goes with its fields as they came
 * (Connection and Upgrade are what both ends need), then the bytes flow both ways, and either side's
 * close closes the other. Any other answer goes without its hop-by-hop fields and ends the connection
 * (its body delimited by the close).
 */
function relayUpgrade(client: Duplex, answer: UpgradeAnswer, head: Buffer): void {
  const upstream = answer.upstream;
  if (client.destroyed) {
    answer.cancel();
    return;
  }
  if (upstream !== undefined) {
    client.write(`HTTP/1.1 101 Switching Protocols\r\n${fields(answer.rawHeaders, false)}\r\n`);
    tunnel(client, upstream, head);
    return;
  }
  const body = answer.body as PassThrough;
  client.write(`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Unknown'}\r\n${fields(answer.rawHeaders, true)}connection: close\r\n\r\n`);
  body.once('error', () => client.destroy());
  client.once('close', () => answer.cancel());
  body.pipe(client);
}

/** The answer's fields, never a peer router's requeue and draining marks (and, `hopByHop`, not those either). */
function fields(raw: Buffer[], dropHopByHop: boolean): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = String(raw[i]);
    const lower = name.toLowerCase();
    if (lower === REQUEUE_HEADER || lower === DRAINING_HEADER || (dropHopByHop && isHopByHop(lower))) continue;
    out += `${name}: ${String(raw[i + 1])}\r\n`;
  }
  return out;
}

/** Bytes both ways between the client and the endpoint; either one's close (or error) closes both. */
function tunnel(client: Duplex, upstream: Duplex, head: Buffer): void {
  upstream.on('error', () => upstream.destroy());
  (upstream as Socket).setNoDelay?.(true);
  (client as Socket).setNoDelay?.(true);
  upstream.once('close', () => client.destroy());
  client.once('close', () => upstream.destroy());
  if (head.length > 0) upstream.write(head);
  client.pipe(upstream);
  upstream.pipe(client);
  if (client.destroyed) upstream.destroy();
}
