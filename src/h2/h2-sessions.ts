// Client HTTP/2 sessions of an h2 router: one multiplexed session per endpoint (h2 over mTLS with
// ALPN h2 to a peer router, h2c with prior knowledge to a local pod), reconnected when it ends.

import http2, { type ClientHttp2Session } from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import type { H2SessionEvents } from './events.js';
import { endpointKey, type Endpoint } from '../namer/addr.js';
import { CLIENT_SESSION_STREAMS, HEADER_TABLE_BYTES, MAX_HEADER_PAIRS, MAX_OUTSTANDING_PINGS, MAX_SETTINGS } from './h2-limits.js';

export interface H2SessionOptions {
  /** Sessions with no stream for this long are closed (default 60 s). */
  readonly idleMs?: number;
  /** Node's maxSessionMemory of a client session, in MB (default 32: many streams of one peer share it). */
  readonly maxSessionMemoryMb?: number;
  /** Where client sessions opened and closed are reported (default: nowhere). */
  readonly events?: H2SessionEvents;
  /** A peer sent GOAWAY: it is draining (its key), so the balancer can stop choosing it. */
  readonly onGoaway?: (key: string) => void;
}

/** A failed connect, with the code the requeue logic reads (ECONNREFUSED, UND_ERR_CONNECT_TIMEOUT, ...). */
export class ConnectError extends Error {
  readonly code: string;
  constructor(code: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

export class H2Sessions {
  readonly #o: H2SessionOptions;
  readonly #sessions = new Map<string, ClientHttp2Session>();
  readonly #pending = new Map<string, Promise<ClientHttp2Session>>();
  #closed = false;

  constructor(options: H2SessionOptions = {}) {
    this.#o = options;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * The session to `e` (TLS when `tls` is given), connected within `connectTimeoutMs`: at once when
   * one is open (most streams: no promise, no turn), else a promise of one.
   */
  get(e: Endpoint, tls: ConnectionOptions | undefined, connectTimeoutMs: number): ClientHttp2Session | Promise<ClientHttp2Session> {
    const key = `${tls ? 'h2' : 'h2c'}|${endpointKey(e)}`;
    const open = this.#sessions.get(key);
    if (open !== undefined && !open.closed && !open.destroyed) return open;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const p = this.#connect(key, e, tls, connectTimeoutMs).finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }

  /** Forgets a session that refused a stream (GOAWAY), so the next attempt opens another. */
  drop(session: ClientHttp2Session): void {
    for (const [k, s] of this.#sessions) if (s === session) this.#sessions.delete(k);
  }

  #connect(key: string, e: Endpoint, tls: ConnectionOptions | undefined, connectTimeoutMs: number): Promise<ClientHttp2Session> {
    if (this.#closed) return Promise.reject(new ConnectError('UND_ERR_CLOSED', 'router is closing'));
    const host = e.host.includes(':') ? `[${e.host}]` : e.host;
    const authority = `${tls ? 'https' : 'http'}://${host}:${e.port}`;
    const session = http2.connect(authority, {
      ...(tls ?? {}),
      ...(tls !== undefined ? { ALPNProtocols: ['h2'] } : {}),
      maxSessionMemory: this.#o.maxSessionMemoryMb ?? 32,
      maxHeaderListPairs: MAX_HEADER_PAIRS,
      maxSettings: MAX_SETTINGS,
      maxOutstandingPings: MAX_OUTSTANDING_PINGS,
      peerMaxConcurrentStreams: CLIENT_SESSION_STREAMS,
      settings: { enablePush: false, headerTableSize: HEADER_TABLE_BYTES },
    });
    return new Promise<ClientHttp2Session>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.destroy();
        reject(new ConnectError('UND_ERR_CONNECT_TIMEOUT', `timed out connecting to ${endpointKey(e)}`));
      }, connectTimeoutMs);
      timer.unref();
      const onError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        session.destroy();
        reject(new ConnectError(err.code ?? 'ECONNREFUSED', err.message, err));
      };
      session.once('error', onError);
      session.once('connect', () => {
        clearTimeout(timer);
        session.off('error', onError);
        if (tls !== undefined && session.alpnProtocol !== 'h2') {
          session.destroy();
          reject(new ConnectError('ECONNREFUSED', `${endpointKey(e)} did not negotiate h2 (ALPN ${String(session.alpnProtocol)})`));
          return;
        }
        this.#adopt(key, session);
        resolve(session);
      });
    });
  }

  #adopt(key: string, session: ClientHttp2Session): void {
    this.#sessions.set(key, session);
    this.#o.events?.connect();
    session.on('error', () => undefined); // streams report their own failures; 'close' follows
    session.setTimeout(this.#o.idleMs ?? 60_000, () => session.close());
    session.once('goaway', () => {
      if (this.#sessions.get(key) === session) this.#sessions.delete(key);
      this.#o.onGoaway?.(key.slice(key.indexOf('|') + 1));
    });
    session.once('close', () => {
      if (this.#sessions.get(key) === session) this.#sessions.delete(key);
      this.#o.events?.disconnect();
    });
    // Idle sessions must not keep the process up; streams in flight hold their own refs.
    session.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(
      all.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            s.close(() => resolve());
            setTimeout(() => {
              s.destroy();
              resolve();
            }, 1000).unref();
          }),
      ),
    );
  }
}
