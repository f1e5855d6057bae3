// A small Kubernetes API client (keep-alive): list a collection, open a watch stream. It knows the
// wire protocol (Status objects, resourceVersions, newline-delimited watch events) and nothing of
// what the objects mean. Requests go out on the router's own HTTP/1.1 pool (core/h1-pool.ts, Node's
// llhttp binding); undici's Agent only where this Node lacks that binding. On undici, the first
// request compiles undici's llhttp WebAssembly and keeps its instance for the process's life: an
// idle router would hold it for its watches alone (docs/memory.md, session 7).

import type { Dispatcher } from 'undici';
import { H1Pool, leanClientAvailable } from '../core/h1-pool.js';
import { Agent } from '../core/undici.js';
import type { K8sConnection } from './connection.js';
import { ListItemSplitter } from './list-items.js';
import { JsonLines } from './watch-lines.js';

export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KObject }
  | { type: 'BOOKMARK'; object: { metadata: { resourceVersion: string } } }
  | { type: 'ERROR'; object: { code?: number; reason?: string; message?: string; details?: { retryAfterSeconds?: number } } };

/**
 * A non-2xx answer, with the Status the API server sent (code 410 = resourceVersion expired).
 * `retryAfterMs`: the server's `Retry-After` (delay-seconds, as the API server sends with 429 from
 * priority and fairness, 503, and 504 "Too large resource version"), when it gave one.
 */
export class K8sApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'K8sApiError';
  }
}

export type Query = Record<string, string | undefined>;

/** `Retry-After` in delay-seconds (the API server's form); an HTTP date or anything else is ignored. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined || !/^\d{1,9}$/.test(v.trim())) return undefined;
  return Number(v.trim()) * 1000;
}

/** An error answer is read this far at most (a Status is a few hundred bytes); the rest is dropped. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** What of an error's message is kept (it goes to logs, lastError and the admin views). */
export const MAX_ERROR_MESSAGE_CHARS = 1000;

/** The first `max` bytes of a body as text; the rest is not read (the connection is closed). */
async function headOf(body: AsyncIterable<unknown>, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    parts.push(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    if (bytes >= max) break;
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}

function queryString(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, v);
  const s = p.toString();
  return s === '' ? '' : `?${s}`;
}

export class K8sClient {
  readonly connection: K8sConnection;
  readonly #agent: Dispatcher;
  readonly #origin: string;
  readonly #prefix: string;

  /**
   * `connections`: the most sockets to the API server (default 16). Each watch holds one for its
   * whole life over HTTP/1.1, so a consumer with N long watches needs more than N, or its lists
   * queue behind its watches and never finish.
   */
  constructor(connection: K8sConnection, options: { connections?: number } = {}) {
    this.connection = connection;
    const url = new URL(connection.baseUrl);
    this.#origin = url.origin;
    this.#prefix = url.pathname.replace(/\/+$/, '');
    const limits = {
      keepAliveTimeout: 30_000,
      connections: options.connections ?? 16,
      headersTimeout: 30_000,
      // Watches are long and quiet between events; the server ends them at timeoutSeconds and
      // sends bookmarks, so a much longer silence means the stream is dead.
      bodyTimeout: 10 * 60_000,
    };
    this.#agent = leanClientAvailable()
      ? new H1Pool(url.origin, { ...limits, keepAliveMaxTimeout: 600_000, connect: { ...connection.tls } })
      : new Agent({ ...limits, ...(connection.tls ? { connect: { ...connection.tls } } : {}) });
  }

  async #request(path: string, query: Query, signal?: AbortSignal): Promise<Dispatcher.ResponseData> {
    const auth = await this.connection.authorization?.();
    const res = await this.#agent.request({
      origin: this.#origin,
      path: `${this.#prefix}${path}${queryString(query)}`,
      method: 'GET',
      headers: { accept: 'application/json', ...(auth ? { authorization: auth } : {}) },
      ...(signal ? { signal } : {}),
    });
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    const text = await headOf(res.body, MAX_ERROR_BODY_BYTES).catch(() => '');
    let reason: string | undefined;
    let message = text.slice(0, MAX_ERROR_MESSAGE_CHARS);
    try {
      const status = JSON.parse(text) as { reason?: string; message?: string };
      reason = typeof status.reason === 'string' ? status.reason.slice(0, MAX_ERROR_MESSAGE_CHARS) : undefined;
      message = typeof status.message === 'string' ? status.message.slice(0, MAX_ERROR_MESSAGE_CHARS) : message;
    } catch {
      // not a Status object: keep the text
    }
    throw new K8sApiError(res.statusCode, `${path}: ${res.statusCode} ${message}`, reason, retryAfterMs(res.headers['retry-after']));
  }

  /** Lists a collection: its items and the collection's resourceVersion. */
  async list(path: string, query: Query = {}, signal?: AbortSignal): Promise<{ items: KObject[]; resourceVersion: string }> {
    const res = await this.#request(path, query, signal);
    const body = (await res.body.json()) as { items?: KObject[] | null; metadata?: { resourceVersion?: string } };
    return { items: body.items ?? [], resourceVersion: body.metadata?.resourceVersion ?? '' };
  }

  /**
   * Lists one page (`limit`, `continue` in the query, as the API's "Retrieving large results sets
   * in chunks" describes), handing each item to `onItem` as soon as it is parsed: the page is never
   * held whole, so a page of big objects costs one object at a time. Resolves with the list's
   * resourceVersion and the continue token of the next page (empty on the last). An expired
   * continue token rejects with a K8sApiError of status 410.
   */
  async listPage(
    path: string,
    query: Query,
    signal: AbortSignal | undefined,
    onItem: (item: KObject) => void,
  ): Promise<{ resourceVersion: string; continue: string }> {
    const res = await this.#request(path, query, signal);
    const splitter = new ListItemSplitter();
    for await (const chunk of res.body) {
      for (const item of splitter.push(chunk as Buffer)) onItem(JSON.parse(item.toString('utf8')) as KObject);
    }
    const envelope = splitter.end();
    return { resourceVersion: envelope.metadata?.resourceVersion ?? '', continue: envelope.metadata?.continue ?? '' };
  }

  /**
   * Opens a watch; resolves once the API accepted it (status 200), with the stream of events.
   * An expired resourceVersion rejects with a K8sApiError of status 410.
   */
  async watch(path: string, query: Query, signal?: AbortSignal): Promise<AsyncIterable<WatchEvent>> {
    const res = await this.#request(path, { ...query, watch: '1' }, signal);
    return (async function* events() {
      const lines = new JsonLines();
      for await (const chunk of res.body) {
        for (const e of lines.push(chunk as Buffer)) yield e as WatchEvent;
      }
      for (const e of lines.end()) yield e as WatchEvent;
    })();
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }
}
