// A lean HTTP/1.1 server engine for the router's listeners (issue 28, design 2's server side;
// `servers[].engine: lean`). It takes the place of Node's http.Server on a net.Server or a
// tls.Server and emits the same events the listener already handles ('request', 'upgrade',
// 'connect', 'clientError', 'timeout'), so everything above it (the entry decision, pipelining,
// tunnels, the drain, rescue, access log) is unchanged.
//
// What it keeps of Node's server, because the router's behaviour depends on it: the parser
// (Node's own llhttp binding, strict, fed by the socket in C++ as Node's server does), the request
// object (Node's IncomingMessage: its header folding rules, body stream, back-pressure, _dump and
// 'aborted' semantics), the response's header store and trailer validation (a subclass of Node's
// ServerResponse), Node's framing rules (Content-Length, chunked by default on HTTP/1.1, no body
// for HEAD, 1xx, 204 and 304, close-delimited for HTTP/1.0), Connection and Keep-Alive fields,
// the Date field, `Expect: 100-continue` (100 at once, 417 for other expectations), and the order
// of pipelined answers.
//
// What it does without: the per-request socket timer (one sweep per server checks the headers,
// keep-alive and idle deadlines of every connection, on the injected clock), ServerResponse's
// write path (a head is one string, written with the first body bytes in one writev; no empty
// write to learn when an answer left), and the event and nextTick traffic around both.

import { STATUS_CODES, IncomingMessage, ServerResponse, validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type net from 'node:net';
import type { Socket } from 'node:net';
import { type Cancel, type Clock, every, systemClock } from '../core/clock.js';
import { HTTPParser, type Parser, type StreamHandle } from '../core/h1-pool.js';

const require = createRequire(import.meta.url);
const METHODS = (require('node:_http_common') as { methods?: string[] }).methods ?? [];

/** Whether this Node has what the lean server is written against (the parser binding's server side, the request's internals). */
export function leanServerAvailable(): boolean {
  const P = HTTPParser;
  if (typeof P !== 'function' || typeof P.REQUEST !== 'number' || METHODS.length === 0) return false;
  const proto = P.prototype as unknown as Record<string, unknown>;
  if (typeof proto['getCurrentBuffer'] !== 'function') return false;
  const im = IncomingMessage.prototype as unknown as Record<string, unknown>;
  return typeof im['_dump'] === 'function' && typeof im['_addHeaderLines'] === 'function';
}

export interface LeanServerOptions {
  /** The head's size bound (Node's maxHeaderSize). */
  readonly maxHeaderSize: number;
  /** A request head must be complete this long after its first byte (or after the connection opened). */
  readonly headersTimeoutMs: number;
  /** A connection between requests is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** A connection in a request with no byte read or written for this long is closed ('timeout'). */
  readonly idleTimeoutMs: number;
  /**
   * Requests parsed and not yet answered on one connection, at most (pipelining): at this many the
   * parser pauses, the rest of the read is kept as bytes and the socket is not read, until an
   * answer is done. Default DEFAULT_MAX_UNANSWERED.
   */
  readonly maxUnanswered?: number;
  readonly clock?: Clock;
}

/** Default of LeanServerOptions.maxUnanswered. */
export const DEFAULT_MAX_UNANSWERED = 128;

/** Set on a socket while its parser is paused with bytes held (maxUnanswered): nothing else may restart its reads. */
const HOLDING = Symbol('hostmesh.lean-holding');
interface Holding {
  [HOLDING]?: boolean;
}

/** Whether the lean engine holds unparsed bytes of this socket (the listener's pipelining resume must not read more). */
export function parsingHeld(socket: Socket): boolean {
  return (socket as Holding)[HOLDING] === true;
}

/** llhttp's HPE_PAUSED: a callback that returns it stops the parser after the current element. */
const HPE_PAUSED = 21;
/** Unparsed bytes kept while paused at maxUnanswered (a read is at most 64 KB). */
const MAX_HELD_BYTES = 1024 * 1024;

function isPaused(err: Error): boolean {
  return (err as { code?: string }).code === 'HPE_PAUSED';
}

function pausedAt(err: Error): number {
  return (err as { bytesParsed?: number }).bytesParsed ?? 0;
}

/** Whether this Node's parser binding stops at HPE_PAUSED from a head callback and resumes (checked once). */
const PAUSE_WORKS = ((): boolean => {
  try {
    const P = HTTPParser;
    if (P === undefined || typeof (P.prototype as unknown as { resume?: unknown }).resume !== 'function') return false;
    const p = new P();
    p.initialize(P.REQUEST, {}, 16_384, P.kLenientNone);
    const seen = { heads: 0 };
    p[P.kOnHeadersComplete] = () => (++seen.heads === 1 ? HPE_PAUSED : 0);
    const bytes = Buffer.from('GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1');
    const first = p.execute(bytes);
    if (!(first instanceof Error) || !isPaused(first) || seen.heads !== 1) return false;
    (p as unknown as { resume(): void }).resume();
    const rest = p.execute(bytes.subarray(pausedAt(first)));
    p.close();
    return (seen.heads as number) === 2 && typeof rest === 'number';
  } catch {
    return false;
  }
})();

const CRLF = '\r\n';
/** A head and a body up to this size leave in one buffer, one write. */
const ONE_WRITE = 16_384;
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;
const CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;
const CLOSE = /(?:^|\W)close(?:$|\W)/i;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A field value Node's validateHeaderValue accepts (HTAB, SP-~, obs-text). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** Between requests (or a new connection): the keep-alive or first-head deadline. */
const WAIT = 0;
/** A request head is arriving: the headers deadline. */
const HEAD = 1;
/** Requests in progress: the idle deadline (no byte either way). */
const ACTIVE = 2;

let dateSecond = -1;
let dateText = '';
function utcDate(now: number): string {
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(s * 1000).toUTCString();
  }
  return dateText;
}

/** The server side of a listener in lean mode: attached to a net.Server (plaintext) or tls.Server (after the handshake). */
export class LeanServer {
  readonly #server: net.Server;
  readonly #o: LeanServerOptions;
  readonly #clock: Clock;
  readonly #connections = new Set<Connection>();
  readonly #stopSweep: Cancel;

  constructor(server: net.Server, secure: boolean, options: LeanServerOptions) {
    this.#server = server;
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => this.accept(socket));
    // A tls.Server leaves a failed handshake's socket to its 'tlsClientError' listeners (https.Server destroys it).
    if (secure) server.on('tlsClientError', (_err: Error, socket: Socket) => socket.destroy());
    const shortest = Math.min(options.headersTimeoutMs, options.keepAliveTimeoutMs, options.idleTimeoutMs);
    this.#stopSweep = every(this.#clock, Math.min(1000, Math.max(25, Math.floor(shortest / 4))), () => this.#sweep());
    server.once('close', () => this.#stopSweep());
  }

  /** Serves HTTP/1.1 on an accepted (and, on TLS, secured) socket; also a CONNECT tunnel's socket fed back. */
  accept(socket: Socket): void {
    if (socket.destroyed) return;
    const c = new Connection(this, socket, this.#o);
    this.#connections.add(c);
  }

  get options(): LeanServerOptions {
    return this.#o;
  }

  now(): number {
    return this.#clock.now();
  }

  emit(event: string, ...args: unknown[]): boolean {
    return this.#server.emit(event, ...args);
  }

  listenerCount(event: string): number {
    return this.#server.listenerCount(event);
  }

  forget(c: Connection): void {
    this.#connections.delete(c);
  }

  /** Connections between requests (none in progress, no head arriving) are closed (the drain's first step). */
  closeIdleConnections(): void {
    for (const c of this.#connections) if (c.idle) c.socket.destroy();
  }

  closeAllConnections(): void {
    for (const c of this.#connections) c.socket.destroy();
  }

  #sweep(): void {
    const now = this.#clock.now();
    for (const c of this.#connections) c.check(now);
  }
}

/** A response that writes its head and body straight to its connection's socket (see the file's comment). */
export class LeanResponse extends ServerResponse {
  readonly #conn: Connection;
  /** This response's turn on the socket came (earlier pipelined answers are done). */
  #current = false;
  /** Output written before its turn: [data, callback] pairs, flushed in order when it comes. */
  #queued: (string | Uint8Array | (() => void) | undefined)[] | undefined;
  #head: string | undefined;
  #chunked = false;
  #writes = 0;
  #ended = false;
  #done = false;
  /** Every byte of it was written ('finish'); not so when the connection closed first. */
  #finished = false;
  #needDrain = false;
  #lastOne = false;
  #endCallback: (() => void) | undefined;

  constructor(req: IncomingMessage, conn: Connection, keepAlive: boolean) {
    super(req);
    this.#conn = conn;
    (this as { socket: Socket | null }).socket = conn.socket;
    if (!keepAlive) this.#lastOne = true;
  }

  /** Whether the connection closes after this answer. */
  get last(): boolean {
    return this.#lastOne;
  }

  // Node's OutgoingMessage has these as getters on its prototype, reading its own write path's state.
  static {
    Object.defineProperties(LeanResponse.prototype, {
      writableFinished: {
        get(this: LeanResponse): boolean {
          return this.#finished;
        },
      },
      writableEnded: {
        get(this: LeanResponse): boolean {
          return this.#ended;
        },
      },
      writableNeedDrain: {
        get(this: LeanResponse): boolean {
          return !this.destroyed && !this.#ended && this.#needDrain;
        },
      },
    });
  }

  get #hasBody(): boolean {
    return (this as unknown as { _hasBody: boolean })._hasBody;
  }

  override writeHead(
    statusCode: number,
    reasonOrHeaders?: string | OutgoingHttpHeaders | readonly unknown[],
    maybeHeaders?: OutgoingHttpHeaders | readonly unknown[],
  ): this {
    if (this.#head !== undefined) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    const status = statusCode | 0;
    if (status < 100 || status > 999) throw Object.assign(new RangeError(`Invalid status code: ${statusCode}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    let reason: string | undefined;
    let headers: OutgoingHttpHeaders | readonly unknown[] | undefined;
    if (typeof reasonOrHeaders === 'string') {
      reason = reasonOrHeaders;
      headers = maybeHeaders;
    } else headers = reasonOrHeaders;
    if (reason !== undefined && BAD_VALUE.test(reason)) throw Object.assign(new TypeError('Invalid character in statusMessage'), { code: 'ERR_INVALID_CHAR' });
    this.statusCode = status;
    if (reason !== undefined) this.statusMessage = reason;
    this.#compose(headers);
    return this;
  }

  /** Fields were stored with setHeader/appendHeader (most relayed answers store none: their fields come with writeHead). */
  #stored = false;

  override setHeader(name: string, value: number | string | readonly string[]): this {
    this.#stored = true;
    return super.setHeader(name, value);
  }

  override appendHeader(name: string, value: string | readonly string[]): this {
    this.#stored = true;
    return super.appendHeader(name, value);
  }

  // What #compose saw among the fields it wrote (instance state: no closure or object per answer).
  #head$ = '';
  #sawDate = false;
  #sawTrailer = false;
  #sawLength = false;
  #connection: string | undefined;
  #te: string | undefined;

  /** One field into the head being composed; a value that is a list is one line per item, as in Node. */
  #field(name: string, value: unknown): void {
    if (value === undefined) return;
    if (!TOKEN.test(name)) validateHeaderName(name);
    if (Array.isArray(value)) {
      for (const v of value) this.#field(name, v);
      return;
    }
    const text = typeof value === 'string' ? value : String(value);
    if (BAD_VALUE.test(text)) validateHeaderValue(name, text);
    this.#head$ += `${name}: ${text}${CRLF}`;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'date') this.#sawDate = true;
        break;
      case 7:
        if (name.toLowerCase() === 'trailer') this.#sawTrailer = true;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') this.#connection = this.#connection === undefined ? text : `${this.#connection}, ${text}`;
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') this.#sawLength = true;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') this.#te = text;
        break;
      default:
    }
  }

  /**
   * The head: the stored fields (setHeader) under the given ones, then Date, Connection and framing
   * as Node writes them. `given` is an object or a flat [name, value, ...] list (a relayed answer's
   * fields, in their order).
   */
  #compose(given: OutgoingHttpHeaders | readonly unknown[] | undefined): void {
    const req = this.req as IncomingMessage;
    const status = this.statusCode;
    this.#head$ = `HTTP/1.1 ${status} ${this.statusMessage || STATUS_CODES[status] || 'unknown'}${CRLF}`;
    const flat = Array.isArray(given) ? (given as readonly unknown[]) : undefined;
    const obj = flat === undefined ? (given as OutgoingHttpHeaders | undefined) : undefined;
    if (this.#stored) {
      for (const name of (this as unknown as { getRawHeaderNames(): string[] }).getRawHeaderNames()) {
        if (obj !== undefined && hasOwnLower(obj, name)) continue; // the given value wins, as in Node
        if (flat !== undefined && hasLower(flat, name)) continue;
        this.#field(name, this.getHeader(name));
      }
    }
    if (flat !== undefined) for (let i = 0; i + 1 < flat.length; i += 2) this.#field(String(flat[i]), flat[i + 1]);
    else if (obj !== undefined) for (const name in obj) this.#field(name, obj[name]);
    let head = this.#head$;
    this.#head$ = '';
    if (this.sendDate && !this.#sawDate) head += `Date: ${utcDate(this.#conn.now())}${CRLF}`;
    // No body for HEAD, 1xx, 204 and 304 (Node's _hasBody).
    const bodyless = req.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (bodyless) (this as unknown as { _hasBody: boolean })._hasBody = false;
    const http11 = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
    let framing = '';
    const te = this.#te;
    if (te !== undefined) this.#chunked = CHUNKED.test(te);
    else if (!this.#sawLength && !bodyless) {
      if (!this.#sawTrailer && this.#implicitLength !== undefined) framing = `Content-Length: ${this.#implicitLength}${CRLF}`;
      else if (http11) {
        framing = `Transfer-Encoding: chunked${CRLF}`;
        this.#chunked = true;
      } else {
        // HTTP/1.0 without a length: the body ends with the connection.
        this.#lastOne = true;
      }
    }
    const connection = this.#connection;
    if (connection !== undefined) {
      if (CLOSE.test(connection)) this.#lastOne = true;
    } else if (this.#lastOne) head += `Connection: close${CRLF}`;
    else {
      head += `Connection: keep-alive${CRLF}`;
      const seconds = Math.floor(this.#conn.keepAliveTimeoutMs / 1000);
      if (seconds > 0) head += `Keep-Alive: timeout=${seconds}${CRLF}`;
    }
    head += framing;
    (this as { chunkedEncoding: boolean }).chunkedEncoding = this.#chunked;
    head += CRLF;
    this.#head = head;
    (this as unknown as { _header: string })._header = head;
  }

  /** The length end(data) gives an answer with no head yet (Node's _contentLength). */
  #implicitLength: number | undefined;

  override flushHeaders(): void {
    if (this.#head === undefined) this.writeHead(this.statusCode);
    if (this.#headOut()) this.#out(undefined, undefined);
  }

  override writeContinue(cb?: () => void): void {
    this.#raw(`HTTP/1.1 100 Continue${CRLF}${CRLF}`, cb);
  }

  // The type's overloads (chunk, encoding?, cb?): encodings other than a Buffer's or latin1/utf8 strings are not used by the router.
  override write(chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean {
    const callback = (typeof encodingOrCb === 'function' ? encodingOrCb : cb) as (() => void) | undefined;
    if (this.#ended) {
      const err = Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
      process.nextTick(() => this.emit('error', err));
      return false;
    }
    if (this.#head === undefined) this.writeHead(this.statusCode);
    const data =
      typeof chunk === 'string' ? Buffer.from(chunk, typeof encodingOrCb === 'string' ? (encodingOrCb as BufferEncoding) : 'utf8') : (chunk as Uint8Array);
    if (!this.#hasBody || data.length === 0) {
      if (this.#headOut()) this.#out(undefined, undefined);
      if (callback !== undefined) process.nextTick(callback);
      return !this.#needDrain;
    }
    return this.#out(data, callback);
  }

  override end(chunk?: unknown, encodingOrCb?: unknown, cb?: unknown): this {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof encodingOrCb === 'function') {
      cb = encodingOrCb;
      encodingOrCb = undefined;
    }
    if (this.#ended) {
      if (typeof cb === 'function') process.nextTick(cb as () => void);
      return this;
    }
    if (this.#head === undefined) {
      const data = chunk === undefined || chunk === null ? undefined : chunk;
      this.#implicitLength =
        data === undefined ? 0 : typeof data === 'string' ? Buffer.byteLength(data, (encodingOrCb as BufferEncoding) ?? 'utf8') : (data as Uint8Array).length;
      this.writeHead(this.statusCode);
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk, encodingOrCb as BufferEncoding);
    this.#ended = true;
    (this as { finished: boolean }).finished = true;
    if (typeof cb === 'function') this.#endCallback = cb as () => void;
    const tail = this.#chunked && this.#hasBody ? `0${CRLF}${(this as unknown as { _trailer: string })._trailer ?? ''}${CRLF}` : undefined;
    if (tail !== undefined || this.#headOut()) this.#out(tail === undefined ? undefined : Buffer.from(tail, 'latin1'), undefined, true);
    else if (this.#writes === 0 && this.#current) this.#finishSoon();
    return this;
  }

  override destroy(error?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.#conn.socket.destroy(error);
    return this;
  }

  /** Whether the head is still to be written (it leaves with the first data, or alone). */
  #headOut(): boolean {
    return this.#head !== undefined && !this.#headWritten;
  }

  #headWritten = false;

  /**
   * Writes the head if not yet out, then `data` (framed as a chunk when chunked, unless `raw`), in
   * one writev. Before its turn on the connection, the pieces wait in order.
   */
  #out(data: Uint8Array | undefined, cb: (() => void) | undefined, raw = false): boolean {
    let head: string | undefined;
    if (!this.#headWritten) {
      this.#headWritten = true;
      head = this.#head;
    }
    const socket = this.#conn.socket;
    if (this.destroyed) {
      if (cb !== undefined) process.nextTick(cb);
      return false;
    }
    if (!this.#current) {
      const q = (this.#queued ??= []);
      if (head !== undefined) q.push(head, undefined);
      if (data !== undefined) {
        if (this.#chunked && !raw) q.push(`${data.length.toString(16)}${CRLF}`, undefined, data, undefined, CRLF, cb);
        else q.push(data, cb);
      } else if (cb !== undefined) q.push('', cb);
      return true;
    }
    if (socket.destroyed) {
      if (cb !== undefined) process.nextTick(cb);
      return false;
    }
    let ok = true;
    const framed = data !== undefined && this.#chunked && !raw;
    if (head !== undefined && data !== undefined && head.length + data.length <= ONE_WRITE) {
      // A head and a small body (most answers) leave as one buffer: one write, no writev arrays.
      const size = framed ? `${data.length.toString(16)}${CRLF}` : '';
      const out = Buffer.allocUnsafe(head.length + size.length + data.length + (framed ? 2 : 0));
      let at = out.write(head, 0, 'latin1');
      if (framed) at += out.write(size, at, 'latin1');
      out.set(data, at);
      if (framed) out.write(CRLF, at + data.length, 'latin1');
      this.#writes++;
      ok = socket.write(out, this.#wrap(cb));
      if (!ok) {
        this.#needDrain = true;
        this.#conn.wantDrain(this);
      }
      return ok;
    }
    const pieces = (head !== undefined ? 1 : 0) + (data !== undefined ? (framed ? 3 : 1) : 0);
    if (pieces > 1) socket.cork();
    if (head !== undefined) {
      if (data === undefined) {
        this.#writes++;
        ok = socket.write(head, 'latin1', this.#wrap(cb));
      } else socket.write(head, 'latin1');
    }
    if (data !== undefined) {
      this.#writes++;
      if (this.#chunked && !raw) {
        socket.write(`${data.length.toString(16)}${CRLF}`, 'latin1');
        socket.write(data);
        ok = socket.write(CRLF, 'latin1', this.#wrap(cb));
      } else ok = socket.write(data, this.#wrap(cb));
    } else if (cb !== undefined && head === undefined) {
      process.nextTick(cb);
    }
    if (pieces > 1) socket.uncork();
    if (!ok) {
      this.#needDrain = true;
      this.#conn.wantDrain(this);
    }
    return ok;
  }

  /** A 100 Continue: never framed, in order with the answers before it. */
  #raw(text: string, cb: (() => void) | undefined): void {
    if (!this.#current) {
      (this.#queued ??= []).push(text, cb);
      return;
    }
    this.#conn.socket.write(text, 'latin1', cb);
  }

  #wrap(cb: (() => void) | undefined): () => void {
    if (cb === undefined) return this.#written;
    return () => {
      cb();
      this.#written();
    };
  }

  readonly #written = (): void => {
    if (--this.#writes === 0 && this.#ended) this.#finish();
  };

  #finishSoon(): void {
    process.nextTick(() => this.#finish());
  }

  /** Its turn on the socket came: what waited is written. */
  start(): void {
    this.#current = true;
    const q = this.#queued;
    if (q === undefined) return;
    this.#queued = undefined;
    const socket = this.#conn.socket;
    socket.cork();
    for (let i = 0; i < q.length; i += 2) {
      const piece = q[i] as string | Uint8Array;
      const cb = q[i + 1] as (() => void) | undefined;
      if (piece.length === 0) {
        if (cb !== undefined) process.nextTick(cb);
        continue;
      }
      if (cb !== undefined || i + 2 >= q.length) {
        this.#writes++;
        if (!socket.write(piece as string | Uint8Array, 'latin1', this.#wrap(cb))) {
          this.#needDrain = true;
          this.#conn.wantDrain(this);
        }
      } else socket.write(piece as string | Uint8Array, 'latin1');
    }
    socket.uncork();
    if (this.#ended && this.#writes === 0) this.#finishSoon();
  }

  /** The socket drained: an answer that waited for it may write again. */
  drained(): void {
    if (!this.#needDrain) return;
    this.#needDrain = false;
    this.emit('drain');
  }

  #finish(): void {
    if (this.#done || this.destroyed) return;
    this.#done = true;
    this.#finished = true;
    this.#endCallback?.();
    this.#conn.answered(this); // first, as Node's server: an answer that closes the connection has ended the socket when 'finish' is heard
    this.emit('finish');
    this.emit('close');
  }

  /** The connection closed before this answer was done: 'close' without 'finish' (Node's onServerResponseClose). */
  socketClosed(): void {
    if (this.#done) return;
    this.#done = true;
    this.destroyed = true;
    this.emit('close');
  }
}

function hasOwnLower(obj: OutgoingHttpHeaders, name: string): boolean {
  const lower = name.toLowerCase();
  for (const k in obj) if (k.toLowerCase() === lower) return true;
  return false;
}

function hasLower(flat: readonly unknown[], name: string): boolean {
  const lower = name.toLowerCase();
  for (let i = 0; i < flat.length; i += 2) if (String(flat[i]).toLowerCase() === lower) return true;
  return false;
}

/**
 * Node's IncomingMessage, whose _read restarts this connection's reads: its own resumes the
 * socket's stream, which a socket read by the parser in C++ never leaves.
 */
class LeanRequest extends IncomingMessage {
  readonly #conn: Connection;

  constructor(socket: Socket, conn: Connection) {
    super(socket);
    this.#conn = conn;
  }

  override _read(): void {
    const state = (this as unknown as { _readableState: { readingMore: boolean } })._readableState;
    if (!(this as unknown as { _consuming: boolean })._consuming) {
      state.readingMore = false;
      (this as unknown as { _consuming: boolean })._consuming = true;
    }
    this.#conn.resumeBody();
  }
}

/** IncomingMessage's own way to take a head's or trailers' fields (its folding rules, its lazy object). */
interface AddHeaderLines {
  _addHeaderLines(headers: string[], n: number): void;
}

/** IncomingMessage's upgrade flag (Node sets it; its type has it only on the http2 side). */
interface Upgradable {
  upgrade: boolean;
}

interface Pending {
  readonly req: IncomingMessage;
  readonly res: LeanResponse;
}

/** One connection: its parser, its requests in order, its deadline phase. */
class Connection {
  readonly socket: Socket;
  readonly #server: LeanServer;
  readonly #parser: Parser;
  readonly #handle: StreamHandle | undefined;
  readonly keepAliveTimeoutMs: number;
  readonly #maxUnanswered: number;
  /** Requests not yet answered, oldest first; the first's answer is the one writing. */
  readonly #line: Pending[] = [];
  /** The request whose body is being parsed. */
  #incoming: IncomingMessage | undefined;
  #headers: string[] = [];
  #url = '';
  #phase = WAIT;
  #since: number;
  #bytes = 0;
  /** A request head has begun and is not complete. */
  #inHead = false;
  #headSince = 0;
  /** No request yet: the wait for the first head is the headers deadline, later ones the keep-alive. */
  #fresh = true;
  /** A parse error waits for the answers before it (a pipelined request's garbage). */
  #error: Error | undefined;
  #stopped = false;
  /** A malformed request taken out of the line: its stream is aborted when the socket closes. */
  #dropped: IncomingMessage | undefined;
  #drainWaiter: LeanResponse | undefined;

  constructor(server: LeanServer, socket: Socket, o: LeanServerOptions) {
    this.#server = server;
    this.socket = socket;
    this.keepAliveTimeoutMs = o.keepAliveTimeoutMs;
    this.#maxUnanswered = Math.max(1, o.maxUnanswered ?? DEFAULT_MAX_UNANSWERED);
    this.#since = server.now();
    const P = HTTPParser!;
    const p = new P();
    p.initialize(P.REQUEST, {}, o.maxHeaderSize, P.kLenientNone);
    p[P.kOnMessageBegin] = this.#onBegin;
    p[P.kOnHeaders] = this.#onHeaders;
    p[P.kOnHeadersComplete] = this.#onHead;
    p[P.kOnBody] = this.#onBody;
    p[P.kOnMessageComplete] = this.#onComplete;
    this.#parser = p;
    const h = (socket as unknown as { _handle?: StreamHandle | null })._handle ?? undefined;
    // Bytes put back on the socket (an h2c request re-read, a CONNECT's first bytes) are in its
    // JS buffer, which a consuming parser would not see: such a socket is read in JS.
    if (h?.isStreamBase === true && h._consumed !== true && socket.readableLength === 0) {
      h._consumed = true;
      p[P.kOnExecute] = this.#afterExecute;
      p.consume(h);
      this.#handle = h;
    } else {
      socket.on('data', this.#onData);
    }
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    socket.on('drain', this.#onDrain);
  }

  now(): number {
    return this.#server.now();
  }

  /** Nothing in progress and no head arriving (closeIdleConnections). */
  get idle(): boolean {
    return this.#line.length === 0 && this.#phase === WAIT;
  }

  /** The sweep: the phase's deadline passed? */
  check(now: number): void {
    if (this.socket.destroyed) return;
    const o = this.#server.options;
    switch (this.#phase) {
      case WAIT:
        if (now - this.#since < (this.#fresh ? o.headersTimeoutMs : this.keepAliveTimeoutMs)) return;
        if (this.#fresh) this.#headersTimedOut();
        else this.#server.emit('timeout', this.socket);
        return;
      case HEAD:
        if (now - this.#since >= o.headersTimeoutMs) this.#headersTimedOut();
        return;
      default: {
        const s = this.socket;
        const bytes = s.bytesRead + s.bytesWritten - s.writableLength;
        if (bytes !== this.#bytes) {
          this.#bytes = bytes;
          this.#since = now;
          return;
        }
        if (now - this.#since >= o.idleTimeoutMs) this.#server.emit('timeout', this.socket);
      }
    }
  }

  #headersTimedOut(): void {
    this.#stop();
    const err = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    this.#clientError(err);
  }

  // The parser's callbacks.

  readonly #onBegin = (): void => {
    this.#inHead = true;
    this.#headSince = this.#server.now();
    if (this.#phase === WAIT) {
      this.#phase = HEAD;
      this.#since = this.#server.now();
    }
  };

  readonly #onHeaders = (headers: string[], url: string): void => {
    for (const h of headers) this.#headers.push(h);
    this.#url += url;
  };

  readonly #onHead = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _status: number,
    _statusMessage: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    let raw = headers;
    if (raw === undefined) {
      raw = this.#headers;
      url = this.#url;
    }
    this.#headers = [];
    this.#url = '';
    this.#inHead = false;
    this.#fresh = false;
    if (!upgrade && PAUSE_WORKS && this.#line.length >= this.#maxUnanswered) {
      // A client pipelining faster than it is answered: at the cap the parser stops at this head,
      // which is kept as its fields (no request object yet), and the rest of the read waits as
      // bytes (#hold), so one 64 KB read of small requests never becomes thousands of request
      // objects held until their turn. Its body, if any, is parsed once it is taken (#resumeParsing):
      // every request taken has its whole body readable, so no answer can wait on a paused parser.
      this.#deferred = { major, minor, raw, method, url: url ?? '', keepAlive };
      this.#phase = ACTIVE;
      return HPE_PAUSED;
    }
    return this.#take(major, minor, raw, method, url ?? '', upgrade, keepAlive);
  };

  /** A head the parser paused at (the connection had maxUnanswered requests unanswered). */
  #deferred: { major: number; minor: number; raw: string[]; method: number; url: string; keepAlive: boolean } | undefined;

  /** A request head becomes a request and its response, in the line; llhttp's answer for the head callback. */
  #take(major: number, minor: number, raw: string[], method: number, url: string, upgrade: boolean, keepAlive: boolean): number {
    const socket = this.socket;
    const req = new LeanRequest(socket, this);
    req.httpVersionMajor = major;
    req.httpVersionMinor = minor;
    req.httpVersion = `${major}.${minor}`;
    (req as unknown as AddHeaderLines)._addHeaderLines(raw, raw.length);
    req.method = METHODS[method] ?? '';
    req.url = url;
    (req as unknown as Upgradable).upgrade = upgrade;
    if (upgrade) {
      // Handed over after this read's execute (#afterExecute): the socket leaves this server.
      this.#incoming = req;
      this.#phase = ACTIVE;
      return 2; // llhttp: no body, the rest is the upgraded protocol's (as Node's parser does)
    }
    this.#phase = ACTIVE;
    this.#since = this.#server.now();
    this.#bytes = 0;
    this.#incoming = req;
    const res = new LeanResponse(req, this, keepAlive);
    const entry: Pending = { req, res };
    this.#line.push(entry);
    if (this.#line.length === 1) res.start();
    const expect = req.headers.expect;
    if (expect !== undefined && major === 1 && minor === 1) {
      if (CONTINUE.test(expect)) {
        res.writeContinue();
      } else {
        res.writeHead(417);
        res.end();
        return 0;
      }
    }
    this.#server.emit('request', req, res);
    return 0;
  }

  readonly #onBody = (chunk: Buffer): void => {
    const req = this.#incoming;
    if (req === undefined || req.destroyed) return;
    if (!req.push(chunk)) this.#pauseReading();
  };

  #bodyPaused = false;

  /**
   * The request's reader is behind: the socket stops being read (the rest of this read is still
   * parsed) until the request's stream asks for more (LeanRequest._read).
   */
  #pauseReading(): void {
    if (this.#bodyPaused || this.socket.destroyed) return;
    this.#bodyPaused = true;
    this.#stopReads();
  }

  /** The request's reader wants more (its stream's _read, or Node's _dump). */
  resumeBody(): void {
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    if (this.socket.destroyed || this.#held !== undefined) return; // held bytes are parsed when an answer is done
    this.#startReads();
  }

  readonly #onComplete = (): void => {
    const req = this.#incoming;
    if (req === undefined || (req as unknown as Upgradable).upgrade) return; // an upgrade is handed over after this read
    this.#incoming = undefined;
    req.complete = true;
    this.#url = ''; // the binding hands the trailers over with the message's url again
    const trailers = this.#headers;
    if (trailers.length > 0) {
      this.#headers = [];
      (req as unknown as AddHeaderLines)._addHeaderLines(trailers, trailers.length);
    }
    req.push(null);
    // Answered already (an early answer): the connection was waiting for this body only.
    const first = this.#line[0];
    if (first !== undefined && first.req === req && first.res.writableFinished) this.#next();
  };

  readonly #afterExecute = (ret: number | Error | undefined): void => {
    if (ret instanceof Error) {
      // (Copied once: the read's memory is not ours to keep.)
      if (isPaused(ret)) this.#hold(Buffer.from((this.#parser as unknown as { getCurrentBuffer(): Buffer }).getCurrentBuffer().subarray(pausedAt(ret))));
      else this.#parseError(ret);
      return;
    }
    const req = this.#incoming;
    if (req !== undefined && (req as unknown as Upgradable).upgrade && typeof ret === 'number') {
      const buffer = (this.#parser as unknown as { getCurrentBuffer(): Buffer }).getCurrentBuffer();
      this.#handOver(req, buffer.subarray(ret));
    }
  };

  readonly #onData = (chunk: Buffer): void => {
    if (this.#stopped) return;
    if (this.#held !== undefined) {
      this.#hold(chunk); // paused at the cap: bytes wait in order
      return;
    }
    this.#execute(chunk);
  };

  /**
   * Parses bytes given from JavaScript (a socket read in JS, or held bytes): a pause keeps the rest,
   * a parse error is answered, an upgrade hands the socket over. Whether parsing went through.
   */
  #execute(bytes: Buffer): boolean {
    const ret = this.#parser.execute(bytes);
    if (ret instanceof Error) {
      if (isPaused(ret)) this.#hold(bytes.subarray(pausedAt(ret)));
      else this.#parseError(ret);
      return false;
    }
    const req = this.#incoming;
    if (req !== undefined && (req as unknown as Upgradable).upgrade) {
      this.#handOver(req, bytes.subarray(ret));
      return false;
    }
    return true;
  }

  /** Stops the socket being read (its stream handle's reads when the parser consumes it). */
  #stopReads(): void {
    const h = this.#handle;
    if (h === undefined) this.socket.pause();
    else if (!this.socket.destroyed) {
      h.reading = false;
      h.readStop();
    }
  }

  /** Reads the socket again. */
  #startReads(): void {
    const h = this.#handle;
    if (h === undefined || this.#stopped) this.socket.resume();
    else {
      h.reading = true;
      h.readStart();
    }
  }

  /** Bytes read and not yet parsed: the parser paused at maxUnanswered requests in the line. */
  #held: Buffer | undefined;

  /**
   * Keeps unparsed bytes (in order) and stops reading until the line is below the cap again.
   * `bytes` are kept as they are, not copied: the parser's current buffer (a copy already), a
   * socket's chunk, or what is left of the held bytes themselves (copying that at every answer
   * made a long pipeline quadratic).
   */
  #hold(bytes: Buffer): void {
    const had = this.#held;
    const next = had === undefined ? bytes : Buffer.concat([had, bytes]);
    if (next.length > MAX_HELD_BYTES) {
      // Only reads restarted from elsewhere (the listener's pipelining pause) add to it; a bound anyway.
      this.socket.destroy();
      return;
    }
    this.#held = next;
    (this.socket as Holding)[HOLDING] = true;
    this.#stopReads();
  }

  /** An answer is done: a paused parser takes the bytes it holds, then the socket is read again. */
  #resumeParsing(): void {
    const held = this.#held;
    if (held === undefined || this.#line.length >= this.#maxUnanswered || this.#stopped || this.socket.destroyed) return;
    this.#held = undefined;
    (this.socket as Holding)[HOLDING] = false;
    const d = this.#deferred;
    if (d !== undefined) {
      // The head the parser paused at is taken first; its body (if any) follows in the held bytes.
      this.#deferred = undefined;
      this.#take(d.major, d.minor, d.raw, d.method, d.url, false, d.keepAlive);
      if (this.#stopped || this.socket.destroyed) return;
    }
    (this.#parser as unknown as { resume(): void }).resume();
    if (!this.#execute(held) || this.#bodyPaused || this.#held !== undefined) return;
    this.#startReads();
  }

  #parseError(err: Error): void {
    this.#stop();
    const req = this.#incoming;
    this.#incoming = undefined;
    const last = this.#line[this.#line.length - 1];
    if (req !== undefined && last !== undefined && last.req === req) {
      // The request being read is malformed (llhttp checks some framing after its head was taken):
      // it is dropped, and answered by the error below instead.
      // Its stream is aborted when the socket closes (as Node's server does), not now: that
      // would destroy the socket before the error is answered.
      this.#line.pop();
      this.#dropped = req;
      const started = last.res.headersSent;
      last.res.socketClosed();
      if (started && this.#line.length === 0) {
        // Its answer was already under way: the error cannot be answered on this connection.
        this.socket.destroy();
        return;
      }
    }
    if (this.#line.length > 0) {
      // Earlier answers are still due on this connection: the error is answered after them.
      this.#error = err;
      return;
    }
    this.#clientError(err);
  }

  #clientError(err: Error): void {
    const dropped = this.#dropped;
    this.#detach();
    if (dropped !== undefined && !dropped.complete) {
      // The malformed request may be on its way upstream: it is aborted with the connection.
      this.socket.once('close', () => dropped.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    }
    if (!this.#server.emit('clientError', err, this.socket)) this.socket.destroy();
    // Read on (and drop) what follows, so the client's close is seen while the error answer leaves.
    else if (!this.socket.destroyed) this.socket.resume();
  }

  /** An Upgrade or CONNECT: the socket leaves this server with the bytes after the head. */
  #handOver(req: IncomingMessage, rest: Buffer): void {
    this.#incoming = undefined;
    // Answers still due on it keep their close and drain handling (Node's server hands the socket
    // over at once too, with earlier answers still writing).
    if (this.#line.length === 0) this.#detach();
    else {
      this.#stop();
      this.#server.forget(this);
    }
    const head = Buffer.from(rest); // the parser's buffer is reused for the next read
    const event = req.method === 'CONNECT' ? 'connect' : 'upgrade';
    if (this.#server.listenerCount(event) === 0) {
      this.socket.destroy();
      return;
    }
    this.#server.emit(event, req, this.socket, head);
  }

  /** Parsing ends for good (an error, a timeout, a hand-over). */
  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#handle !== undefined) {
      this.#parser.unconsume();
      this.#handle._consumed = false;
    }
    this.socket.off('data', this.#onData);
  }

  /** The socket is no longer this server's (after a hand-over or a raw error answer). */
  #detach(): void {
    this.#stop();
    this.socket.off('close', this.#onClose);
    this.socket.off('error', this.#onError);
    this.socket.off('drain', this.#onDrain);
    this.#server.forget(this);
    const parser = this.#parser;
    setImmediate(() => parser.close()); // never while one of its callbacks may be on the stack
  }

  wantDrain(res: LeanResponse): void {
    this.#drainWaiter = res;
  }

  readonly #onDrain = (): void => {
    const res = this.#drainWaiter;
    if (res === undefined) return;
    this.#drainWaiter = undefined;
    res.drained();
  };

  /** An answer is done: the next pipelined one starts, or the connection waits or closes. */
  answered(res: LeanResponse): void {
    const first = this.#line[0];
    if (first === undefined || first.res !== res) return;
    const req = first.req;
    if (res.last) {
      this.#line.shift();
      this.#detachAfterLast();
      return;
    }
    if (!req.complete) {
      // The body is still arriving: read and dropped (Node's _dump), then the next request.
      (req as unknown as { _dump(): void })._dump();
      return;
    }
    this.#next();
  }

  #next(): void {
    this.#line.shift();
    if (this.#drainWaiter?.writableFinished === true) this.#drainWaiter = undefined;
    const next = this.#line[0];
    if (next !== undefined) {
      next.res.start();
      if (this.#held !== undefined) this.#resumeParsing();
      return;
    }
    if (this.#held !== undefined) {
      this.#resumeParsing();
      if (this.#line.length > 0 || this.socket.destroyed || this.#stopped) return;
    }
    if (this.#error !== undefined) {
      const err = this.#error;
      this.#error = undefined;
      this.#clientError(err);
      return;
    }
    // A request still being read keeps the idle deadline; a head half in, the headers one.
    this.#phase = this.#incoming !== undefined ? ACTIVE : this.#inHead ? HEAD : WAIT;
    this.#since = this.#phase === HEAD ? this.#headSince : this.#server.now();
    if (this.#phase === WAIT) this.#bytes = 0;
  }

  /** The answer that closes the connection is out: end it once written (Node's destroySoon). */
  #detachAfterLast(): void {
    this.#stop();
    const s = this.socket;
    if (s.writable) s.end();
    else s.destroy();
  }

  readonly #onError = (): void => {
    this.socket.destroy();
  };

  readonly #onClose = (): void => {
    this.#stop();
    this.#server.forget(this);
    const aborted = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    const incoming = this.#incoming;
    this.#incoming = undefined;
    if (incoming !== undefined && !incoming.complete) incoming.destroy(aborted);
    if (this.#dropped !== undefined && !this.#dropped.complete) this.#dropped.destroy(aborted);
    for (const { req, res } of this.#line.splice(0)) {
      if (!req.complete && !req.destroyed) req.destroy(aborted);
      res.socketClosed();
    }
    const parser = this.#parser;
    setImmediate(() => parser.close());
  };
}
