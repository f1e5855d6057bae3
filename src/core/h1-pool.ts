// A lean HTTP/1.1 client pool on raw sockets: issue 28's design 2, the client side. It speaks to
// one origin (a peer router over TLS, or a local pod in plaintext) with kept-alive connections,
// one request in flight on each, and implements undici's dispatcher interface (dispatch with the
// onConnect/onHeaders/onData/onComplete/onError handler), so the router's attempt code runs on it
// or on undici's Pool alike (client.engine).
//
// Answers are parsed by Node's own llhttp binding (HTTPParser from `_http_common`, the parser of
// Node's http client and server, strict: no lenient flag), fed by the socket in C++ (consume(), as
// Node's http server does: no Buffer or 'data' event per read). A request's head is one latin1
// string, written in one call. Per request there is no IncomingMessage, Readable, promise or timer
// object: one timer per connection carries a deadline that is moved (headers, body idle, keep-alive).
//
// What it keeps from undici, so nothing above it changes: the error classes and codes (connect,
// headers and body timeouts, 'other side closed', parser errors as HPE_*), the Keep-Alive hint
// (its timeout less 2 s, at most keepAliveMaxTimeout), the header checks on what it sends, TLS
// sessions resumed per pool, ALPN http/1.1, and the headers timeout counted from the last
// request body progress.

import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import type * as U from 'undici';
import { type Cancel, type Clock, systemClock } from './clock.js';
import { Dispatcher, WaitQueue } from './undici.js';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Node's llhttp binding. `_http_common` is not a documented API: its shape is checked at load
// (leanClientAvailable), and the router falls back to undici when a Node release changes it.

export interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  consume(handle: StreamHandle): void;
  unconsume(): void;
  [callback: number]: unknown;
}
export interface ParserClass {
  new (): Parser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}
/** A socket's native stream (TCPWrap, TLSWrap), as Node's http server hands it to its parser. */
export interface StreamHandle {
  readonly isStreamBase?: boolean;
  _consumed?: boolean;
  reading?: boolean;
  readStop(): number;
  readStart(): number;
}

export const HTTPParser = (require('node:_http_common') as { HTTPParser?: ParserClass }).HTTPParser;

/** Whether this Node's parser binding has the shape this client is written against (Node 20-24). */
export function leanClientAvailable(): boolean {
  const P = HTTPParser;
  if (typeof P !== 'function') return false;
  const keys = ['RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute', 'kLenientNone'] as const;
  if (!keys.every((k) => typeof P[k] === 'number')) return false;
  const proto = P.prototype as unknown as Record<string, unknown>;
  return ['initialize', 'execute', 'finish', 'close', 'consume', 'unconsume'].every((m) => typeof proto[m] === 'function');
}

// undici's error classes: the router reads their codes (requeue.ts, forward.ts).
const E = require('undici/lib/core/errors.js') as Record<string, new (message?: string) => Error>;
const errorOf = (name: string, message?: string): Error => new (E[name] as new (m?: string) => Error)(message);
const UnwrapHandler = require('undici/lib/handler/unwrap-handler.js') as { unwrap(h: object): Handler };

/** The handler interface undici's dispatchers call (what `UnwrapHandler.unwrap` yields). */
interface Handler {
  onConnect?(abort: (err?: Error) => void): void;
  onHeaders?(status: number, raw: (string | Buffer)[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: (string | Buffer)[] | null): void;
  onError(err: Error): void;
}

// ---------------------------------------------------------------------------------------------

export interface H1PoolOptions {
  /** Connections open at once (the router's admission keeps requests at or under it). */
  readonly connections: number;
  /** An idle connection is closed after this. */
  readonly keepAliveTimeout: number;
  /** The longest a server's Keep-Alive hint keeps an idle connection. */
  readonly keepAliveMaxTimeout: number;
  /** Taken from a server's Keep-Alive hint, so the server's close never races a new request (undici: 2 s). */
  readonly keepAliveTimeoutThreshold?: number;
  /** The answer's head must arrive within this after the request's last byte was sent (0: none). */
  readonly headersTimeout: number;
  /** An answer's body with no byte for this long is cut; paused while the reader holds it back (0: none). */
  readonly bodyTimeout: number;
  /** TCP connect and TLS handshake options; `timeout` bounds both. TLS when the origin is https. */
  readonly connect: tls.ConnectionOptions & { timeout?: number };
  /** The first minSize connections idle for floorKeepAlive instead of keepAliveTimeout (Linkerd 1's minSize). */
  readonly minSize?: number;
  readonly floorKeepAlive?: number;
  /** The answer head's size bound (default: Node's, 16 KiB). */
  readonly maxHeaderSize?: number;
  readonly clock?: Clock;
}

/** 1xx answers taken before a final one: no server sends more than a few; past this the connection is dropped. */
const MAX_INFORMATIONAL = 32;
/** A head and a body up to this size leave in one write. */
const ONE_WRITE = 16_384;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// undici's rules for what a request may carry: a field value has no CR, LF or NUL (obs-text
// allowed), a target has no whitespace or control character.
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_TARGET = /[^\x21-\xff]/;
const KEEP_ALIVE_TIMEOUT = /timeout=(\d+)/;

/** Methods a server may see twice (RFC 9110 9.2.2). */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Methods whose request carries a body: with none, undici (and this pool) say `content-length: 0` (RFC 9110 8.6). */
const expectsPayload = (m: string): boolean => m === 'POST' || m === 'PUT' || m === 'PATCH' || m === 'QUERY' || m === 'PROPFIND' || m === 'PROPPATCH';

type Body = Readable | Buffer | string | null;

/**
 * undici's dispatch options, plus what only this pool sends: a chunked request body's trailer
 * fields ([name, value, ...], read when the body ends; the request's own, as its client sent them).
 */
export interface DispatchOptionsWithTrailers extends U.Dispatcher.DispatchOptions {
  trailers?: () => readonly string[] | undefined;
}

/** Fields that never go in a trailer section (RFC 9110 6.5.1: framing, routing, hop-by-hop). */
const NOT_TRAILERS: ReadonlySet<string> = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
  'content-encoding',
  'content-type',
  'content-range',
  'authorization',
  'proxy-authorization',
  'set-cookie',
  'cookie',
  'expect',
]);

/** The last chunk of a chunked body, with the trailer fields that may go there (others are dropped, as are malformed ones). */
function lastChunk(trailers: readonly string[] | undefined): string {
  if (trailers === undefined || trailers.length === 0) return '0\r\n\r\n';
  let out = '0\r\n';
  for (let i = 0; i + 1 < trailers.length; i += 2) {
    const name = trailers[i] as string;
    const value = trailers[i + 1] as string;
    if (!TOKEN.test(name) || BAD_VALUE.test(value) || NOT_TRAILERS.has(name.toLowerCase())) continue;
    out += `${name}: ${value}\r\n`;
  }
  return `${out}\r\n`;
}

/** One request handed to the pool: its head (made at dispatch), body and handler. */
class Pending {
  readonly handler: Handler;
  readonly head: string;
  readonly body: Body;
  readonly isHead: boolean;
  readonly method: string;
  /** Sent once more after a kept-alive connection closed under it (at most once). */
  retried = false;
  /** Bytes the body must have (Content-Length), or -1: sent chunked. */
  readonly length: number;
  conn: Conn | undefined;
  /** The handler has had its last call (onComplete or onError). */
  finished = false;
  /** A chunked body's trailer fields, read when the body ends ([name, value, ...]; DispatchOptionsWithTrailers). */
  readonly trailers: (() => readonly string[] | undefined) | undefined;

  constructor(opts: U.Dispatcher.DispatchOptions, handler: Handler, hostHeader: string) {
    this.handler = handler;
    const method = opts.method;
    const path = opts.path;
    if (typeof method !== 'string' || !TOKEN.test(method)) throw errorOf('InvalidArgumentError', 'invalid request method');
    if (typeof path !== 'string' || path === '' || BAD_TARGET.test(path)) throw errorOf('InvalidArgumentError', 'invalid request path');
    this.isHead = method === 'HEAD';
    this.method = method;
    const body = (opts.body ?? null) as Body;
    if (body !== null && typeof body !== 'string' && !Buffer.isBuffer(body) && typeof (body as Readable).on !== 'function') {
      throw errorOf('InvalidArgumentError', 'the request body must be a Buffer, a string or a Readable');
    }
    let host: string | undefined;
    let length = -2;
    let fields = '';
    const h = opts.headers as Record<string, string | string[] | number | undefined> | null | undefined;
    if (h !== null && h !== undefined) {
      for (const k in h) {
        const v = h[k];
        if (v === undefined) continue;
        if (!TOKEN.test(k)) throw errorOf('InvalidArgumentError', `invalid header name: ${k}`);
        switch (k.length) {
          case 4:
            if (k.toLowerCase() === 'host') {
              host = checked(k, String(v));
              continue;
            }
            break;
          case 6:
            if (k.toLowerCase() === 'expect') throw errorOf('NotSupportedError', 'expect header not supported');
            break;
          case 7:
          case 10:
          case 17:
            switch (k.toLowerCase()) {
              case 'upgrade':
              case 'keep-alive':
              case 'connection':
              case 'transfer-encoding':
                throw errorOf('InvalidArgumentError', `invalid ${k.toLowerCase()} header`);
            }
            break;
          case 14:
            if (k.toLowerCase() === 'content-length') {
              const s = String(v);
              if (!/^\d{1,15}$/.test(s)) throw errorOf('InvalidArgumentError', 'invalid content-length header');
              length = Number(s);
              continue;
            }
            break;
        }
        if (Array.isArray(v)) for (const one of v) fields += `${k}: ${checked(k, String(one))}\r\n`;
        else fields += `${k}: ${checked(k, String(v))}\r\n`;
      }
    }
    if (body === null) {
      if (length > 0) throw errorOf('RequestContentLengthMismatchError', 'Request body length does not match content-length header');
      if (length === 0 || expectsPayload(method)) fields += 'content-length: 0\r\n';
      length = 0;
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      const n = Buffer.byteLength(body);
      if (length >= 0 && length !== n) throw errorOf('RequestContentLengthMismatchError', 'Request body length does not match content-length header');
      length = n;
      fields += `content-length: ${n}\r\n`;
    } else if (length >= 0) fields += `content-length: ${length}\r\n`;
    else {
      length = -1;
      fields += 'transfer-encoding: chunked\r\n';
    }
    this.length = length;
    this.body = body;
    this.trailers = (opts as DispatchOptionsWithTrailers).trailers;
    if (body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      // From the start, not from the first write: a body failing while its connection is made
      // aborts the request (else an uncaught error); one failing later fails it the same way.
      body.on('error', ignore);
      body.once('error', this.abort);
    }
    this.head = `${method} ${path} HTTP/1.1\r\nhost: ${host ?? hostHeader}\r\n${fields}\r\n`;
  }

  /** Given to the handler's onConnect: aborts the request wherever it is (queued, connecting, in flight). */
  readonly abort = (err?: Error): void => {
    if (this.finished) return;
    const reason = err ?? errorOf('RequestAbortedError');
    if (this.conn !== undefined) this.conn.abort(this, reason);
    else this.fail(reason); // still queued: the pool skips it
  };

  /** The handler's last call, once. */
  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    // The handler may keep this request (its abort) until the whole exchange is over, through
    // requeues to other endpoints: a failed connection, its socket and its parser must not stay
    // reachable through it (thousands of refused attempts while binding many services).
    this.conn = undefined;
    try {
      this.handler.onError(err);
    } catch {
      // a handler that throws while told of a failure has nothing left to be told
    }
  }
}

function checked(name: string, value: string): string {
  if (BAD_VALUE.test(value)) throw errorOf('InvalidArgumentError', `invalid ${name} header`);
  return value;
}

// ---------------------------------------------------------------------------------------------

const CONNECTING = 0;
const IDLE = 1;
const BUSY = 2;
const CLOSED = 3;

const NO_TIMER = 0;
const CONNECT_TIMER = 1;
const HEADERS_TIMER = 2;
const BODY_TIMER = 3;
const IDLE_TIMER = 4;

// The listeners every connection shares (set in Conn's static block, where its private methods are).
let onSocketConnect: (this: net.Socket) => void;
let onSocketData: (this: net.Socket, chunk: Buffer) => void;
let onSocketEnd: (this: net.Socket) => void;
let onSocketDrain: (this: net.Socket) => void;
let onSocketError: (this: net.Socket, err: Error) => void;
let onSocketClose: (this: net.Socket) => void;
let onSocketSession: (this: net.Socket, session: Buffer) => void;
let parserCallbacks: Readonly<Record<'messageBegin' | 'fields' | 'head' | 'body' | 'messageComplete' | 'execute', unknown>>;

/** A streamed request body's listeners (made once per connection, at its first streamed body). */
interface BodyListeners {
  readonly data: (chunk: Buffer | string) => void;
  readonly end: () => void;
  readonly close: () => void;
}

/** What a connection's socket and parser carry to name it (their listeners are shared: `this` is the socket or the parser). */
const kConn = Symbol('h1-pool connection');
type Owned = { [kConn]: Conn };

/**
 * One connection: its socket, its answer parser, and the request in flight on it.
 *
 * A connection attempt holds little (issue 28: binding many services makes thousands, most of them
 * refused): the socket's and the parser's listeners are functions shared by every connection (the
 * socket or the parser names its connection), the parser is made once connected, and a closure
 * is made only for what must be handed out (the timer's call; a streamed body's listeners and the
 * reader's resume, on first use).
 */
class Conn {
  readonly socket: net.Socket;
  readonly floor: boolean;
  readonly #pool: H1Pool;
  #parser: Parser | undefined;
  #handle: StreamHandle | undefined;
  state = CONNECTING;
  connected = false;
  #p: Pending | undefined;
  #err: Error | undefined;
  /** Fields of the head being parsed when Node flushed them early, then the trailers. */
  #fields: string[] = [];
  #headersDone = false;
  #complete = false;
  /** Requests this connection has carried (a retry after a stale close is only for a reused one). */
  #exchanges = 0;
  /** A byte of an answer to the request in flight has been parsed. */
  #answered = false;
  #stray = false;
  /** The answer cannot be taken, whatever the parser says of the rest of the read. */
  #fatal = false;
  #infos = 0;
  #keepAlive = false;
  #idleMs: number;
  #bodyDone = true;
  #bodyPaused = false;
  #readPaused = false;
  // The one timer: a deadline of a kind, and a clock call armed at or before it.
  #timerKind = NO_TIMER;
  #deadline = 0;
  #armedAt = Number.POSITIVE_INFINITY;
  #cancel: Cancel | undefined;
  readonly #onTimer = (): void => this.#timer();
  // Made on first use, then kept for the connection's life.
  #resumeFn: (() => void) | undefined;
  #bodyListeners: BodyListeners | undefined;

  constructor(pool: H1Pool, socket: net.Socket, secure: boolean, floor: boolean) {
    this.#pool = pool;
    this.socket = socket;
    this.floor = floor;
    this.#idleMs = pool.idleMsOf(this);
    (socket as unknown as Owned)[kConn] = this;
    // Until connected, only what ends an attempt is listened to (connected: data, end and drain too).
    socket.on(secure ? 'secureConnect' : 'connect', onSocketConnect);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    // A failed write must not close the socket by itself: a server that answers before reading a
    // request's body (413) and closes makes the next body write fail (EPIPE, ECONNRESET) with its
    // answer already in the receive buffer. #onSocketError decides (this connection destroys its
    // socket itself everywhere else: at the end, on a read error, at release).
    const states = socket as unknown as { _readableState?: { autoDestroy: boolean }; _writableState?: { autoDestroy: boolean } };
    if (states._readableState !== undefined && states._writableState !== undefined) {
      states._readableState.autoDestroy = false;
      states._writableState.autoDestroy = false;
    }
    this.#arm(CONNECT_TIMER, pool.connectTimeout);
  }

  // The listeners every connection shares: `this` is the socket or the parser.
  static {
    onSocketConnect = function (this: net.Socket) {
      (this as unknown as Owned)[kConn].#onConnected();
    };
    onSocketData = function (this: net.Socket, chunk: Buffer) {
      (this as unknown as Owned)[kConn].#onData(chunk);
    };
    onSocketEnd = function (this: net.Socket) {
      (this as unknown as Owned)[kConn].#onEnd();
    };
    onSocketDrain = function (this: net.Socket) {
      (this as unknown as Owned)[kConn].#onDrain();
    };
    onSocketError = function (this: net.Socket, err: Error) {
      (this as unknown as Owned)[kConn].#onSocketError(err);
    };
    onSocketClose = function (this: net.Socket) {
      (this as unknown as Owned)[kConn].#onClose();
    };
    onSocketSession = function (this: net.Socket, session: Buffer) {
      (this as unknown as Owned)[kConn].#pool.session = session;
    };
    parserCallbacks = {
      messageBegin(this: Owned) {
        this[kConn].#onMessageBegin();
      },
      fields(this: Owned, fields: string[]) {
        this[kConn].#onFields(fields);
      },
      head(
        this: Owned,
        major: number,
        minor: number,
        headers: string[] | undefined,
        method: unknown,
        url: unknown,
        status: number,
        reason: string,
        upgrade: boolean,
        keepAlive: boolean,
      ): number {
        return this[kConn].#onHead(major, minor, headers, method, url, status, reason, upgrade, keepAlive);
      },
      body(this: Owned, chunk: Buffer) {
        this[kConn].#onBody(chunk);
      },
      messageComplete(this: Owned) {
        this[kConn].#onMessageComplete();
      },
      execute(this: Owned, r: number | Error | undefined) {
        this[kConn].#afterExecute(r);
      },
    };
  }

  /** The answer parser, made once connected (a refused attempt never has one). */
  #makeParser(): Parser {
    const P = HTTPParser as ParserClass;
    const p = new P();
    p.initialize(P.RESPONSE, {}, this.#pool.maxHeaderSize, P.kLenientNone);
    (p as unknown as Owned)[kConn] = this;
    const cb = parserCallbacks;
    p[P.kOnMessageBegin] = cb.messageBegin;
    p[P.kOnHeaders] = cb.fields;
    p[P.kOnHeadersComplete] = cb.head;
    p[P.kOnBody] = cb.body;
    p[P.kOnMessageComplete] = cb.messageComplete;
    this.#parser = p;
    return p;
  }

  /** Puts a request on this connection (written at once, or when connected). */
  run(p: Pending): void {
    this.state = BUSY;
    this.#p = p;
    p.conn = this;
    this.#exchanges++;
    this.#answered = false;
    this.#headersDone = false;
    this.#complete = false;
    this.#infos = 0;
    this.#fields = [];
    if (this.connected) this.#write(p);
  }

  /** Aborts the request in flight: its handler hears `err`, and the connection, mid-exchange, is closed. */
  abort(p: Pending, err: Error): void {
    if (this.#p !== p) {
      p.fail(err);
      return;
    }
    this.#detachBody(p);
    p.fail(err);
    if (!this.connected) {
      // Nothing was written yet: the handshake goes on, and the connection serves the next request
      // (a pod that leaves during handshakes must not make the router start one per request).
      this.#p = undefined;
      p.conn = undefined;
      this.state = CONNECTING; // the pool may give it the next request before it is up
      return;
    }
    this.socket.destroy();
  }

  #onConnected(): void {
    this.connected = true;
    const s = this.socket;
    s.setNoDelay(true);
    s.on('data', onSocketData); // never fires once the parser consumes the stream; keeps it flowing, so 'end' comes
    s.on('end', onSocketEnd);
    s.on('drain', onSocketDrain);
    const parser = this.#makeParser();
    const h = (s as unknown as { _handle?: StreamHandle })._handle;
    if (h?.isStreamBase === true && h._consumed !== true) {
      h._consumed = true;
      parser[HTTPParser!.kOnExecute] = parserCallbacks.execute;
      parser.consume(h);
      this.#handle = h;
    }
    this.#pool.connected();
    const p = this.#p;
    if (p !== undefined) this.#write(p);
    else this.#pool.release(this);
  }

  #write(p: Pending): void {
    const s = this.socket;
    const body = p.body;
    this.#arm(HEADERS_TIMER, this.#pool.headersTimeout);
    if (body === null) {
      this.#bodyDone = true;
      s.write(p.head, 'latin1');
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      this.#bodyDone = true;
      if (p.length <= ONE_WRITE) s.write(Buffer.concat([Buffer.from(p.head, 'latin1'), Buffer.from(body)]));
      else {
        s.cork();
        s.write(p.head, 'latin1');
        s.write(body);
        s.uncork();
      }
    } else {
      if (body.destroyed || body.errored !== null) {
        this.#bodyDone = false;
        this.#failBody(p, (body.errored as Error | null) ?? errorOf('RequestAbortedError', 'request body closed before its end'));
        return;
      }
      this.#bodyDone = false;
      this.#bodyPaused = false;
      this.#sent = 0;
      // The head leaves with the body's first bytes (as undici does): a request whose body never
      // starts (its client's framing failed) reaches no one.
      this.#headPending = true;
      const l = (this.#bodyListeners ??= {
        data: (chunk) => this.#onBodyData(chunk),
        end: () => this.#onBodyEnd(),
        close: () => this.#onBodyClose(),
      });
      body.on('data', l.data);
      body.on('end', l.end);
      body.on('close', l.close);
      if (body.isPaused()) body.resume();
    }
  }

  #sent = 0;
  #headPending = false;

  #onBodyData(chunk: Buffer | string): void {
    const p = this.#p;
    if (p === undefined || p.finished) return;
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (b.length === 0) return;
    const s = this.socket;
    if (p.length >= 0) {
      this.#sent += b.length;
      if (this.#sent > p.length) {
        this.#failBody(p, errorOf('RequestContentLengthMismatchError', 'Request body length does not match content-length header'));
        return;
      }
    }
    s.cork();
    if (this.#headPending) {
      this.#headPending = false;
      s.write(p.head, 'latin1');
    }
    let ok: boolean;
    if (p.length >= 0) ok = s.write(b);
    else {
      s.write(`${b.length.toString(16)}\r\n`, 'latin1');
      s.write(b);
      ok = s.write('\r\n', 'latin1');
    }
    s.uncork();
    if (!this.#headersDone) this.#arm(HEADERS_TIMER, this.#pool.headersTimeout); // counted from the last progress
    if (!ok) {
      this.#bodyPaused = true;
      (p.body as Readable).pause();
    }
  }

  #onBodyEnd(): void {
    const p = this.#p;
    if (p === undefined || p.finished) return;
    if (p.length >= 0 && this.#sent !== p.length) {
      this.#failBody(p, errorOf('RequestContentLengthMismatchError', 'Request body length does not match content-length header'));
      return;
    }
    const last = p.length < 0 ? lastChunk(p.trailers?.()) : '';
    if (this.#headPending) {
      this.#headPending = false;
      this.socket.write(`${p.head}${last}`, 'latin1');
    } else if (p.length < 0) this.socket.write(last, 'latin1');
    this.#bodyDone = true;
    this.#detachBody(p);
    if (!this.#headersDone) this.#arm(HEADERS_TIMER, this.#pool.headersTimeout);
    if (this.#complete) this.#release();
  }

  /** The body stream closed before its end (destroyed: the client left, or another attempt took over). */
  #onBodyClose(): void {
    const p = this.#p;
    if (p !== undefined && !p.finished && !this.#bodyDone) this.#failBody(p, errorOf('RequestAbortedError', 'request body closed before its end'));
  }

  #failBody(p: Pending, err: Error): void {
    this.#detachBody(p);
    p.fail(err);
    this.socket.destroy();
  }

  #detachBody(p: Pending): void {
    const body = p.body;
    const l = this.#bodyListeners;
    if (body === null || typeof body === 'string' || Buffer.isBuffer(body) || l === undefined) return;
    body.off('data', l.data);
    body.off('end', l.end);
    body.off('close', l.close);
  }

  #onDrain(): void {
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    const body = this.#p?.body;
    if (body !== null && body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) body.resume();
  }

  // The answer, as the parser reports it.

  #onMessageBegin(): void {
    // A message with no request waiting for it: an answer nobody asked for, or bytes after a
    // complete one. Never handed to the next request (no desync): the connection is dropped.
    if (this.#p === undefined || this.#complete) this.#stray = true;
    this.#answered = true;
    this.#fields = [];
  }

  #onFields(fields: string[]): void {
    for (let i = 0; i < fields.length; i++) this.#fields.push(fields[i] as string);
  }

  #onHead(
    major: number,
    minor: number,
    headers: string[] | undefined,
    _method: unknown,
    _url: unknown,
    status: number,
    reason: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const p = this.#p;
    if (p === undefined || this.#stray || p.finished) {
      this.#stray = true;
      return -1;
    }
    const raw = headers ?? this.#fields;
    this.#fields = [];
    if (upgrade || status === 101) {
      this.#err = errorOf('SocketError', 'bad upgrade');
      this.#fatal = true;
      return -1;
    }
    if (status < 100) {
      // No such status class (RFC 9110 15): neither informational nor final. Taken as a 1xx, what
      // follows it would be read as the answer; the connection is dropped instead.
      this.#err = errorOf('SocketError', `status ${status} is not an HTTP status`);
      this.#fatal = true;
      return -1;
    }
    if (status < 200) {
      if (++this.#infos > MAX_INFORMATIONAL) {
        this.#err = errorOf('SocketError', `more than ${MAX_INFORMATIONAL} informational answers`);
        return -1;
      }
      // 100 Continue, 103 Early Hints: the final answer follows, and the headers timeout runs on.
      // A 1xx has no body whatever its fields say (RFC 9112 6.3): 1 tells llhttp so.
      return 1;
    }
    this.#headersDone = true;
    // llhttp's keep-alive counts a head without length as read-until-close; an answer to HEAD has no body to read.
    this.#keepAlive = keepAlive || (p.isHead && headKeepAlive(major, minor, raw));
    this.#idleMs = this.#pool.idleMsOf(this);
    if (keepAlive) {
      for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i] as string;
        if (k.length === 10 && k.toLowerCase() === 'keep-alive') {
          const m = KEEP_ALIVE_TIMEOUT.exec(raw[i + 1] as string);
          if (m !== null) {
            const ms = Math.min(Number(m[1]) * 1000 - this.#pool.keepAliveThreshold, this.#pool.maxIdleMsOf(this));
            if (ms <= 0) this.#keepAlive = false;
            else this.#idleMs = ms;
          }
        }
      }
    }
    this.#arm(BODY_TIMER, this.#pool.bodyTimeout);
    let pause = false;
    try {
      pause = p.handler.onHeaders?.(status, raw, (this.#resumeFn ??= () => this.#resume()), reason) === false;
    } catch (err) {
      this.#err = err as Error;
      return -1;
    }
    if (pause) this.#pauseReads();
    return p.isHead ? 1 : 0; // 1: an answer to HEAD has no body, whatever its Content-Length says
  }

  #onBody(chunk: Buffer): void {
    const p = this.#p;
    if (p === undefined || p.finished) return;
    if (!this.#readPaused) this.#arm(BODY_TIMER, this.#pool.bodyTimeout);
    let more = true;
    try {
      more = p.handler.onData?.(chunk) !== false;
    } catch (err) {
      this.#err = err as Error;
      this.#detachBody(p);
      p.fail(err as Error);
      this.socket.destroy();
      return;
    }
    if (!more) this.#pauseReads();
  }

  #onMessageComplete(): void {
    if (!this.#headersDone) {
      this.#fields = []; // a 1xx answer ended; its final answer follows
      return;
    }
    const p = this.#p;
    if (p === undefined || this.#complete) return;
    this.#complete = true;
    this.#disarm();
    const trailers = this.#fields;
    this.#fields = [];
    // Trailers that close the connection or speak of framing leave llhttp refusing more bytes on it.
    if (trailers.length > 0 && this.#keepAlive && !trailersKeepAlive(trailers)) this.#keepAlive = false;
    if (p.finished) return;
    p.finished = true;
    try {
      p.handler.onComplete?.(trailers);
    } catch {
      // the answer is complete; the handler's own failure is its own
    }
  }

  /** After each read is parsed: a parse error or a stray answer drops the connection; a complete answer frees it. */
  #afterExecute(r: number | Error | undefined): void {
    if (r instanceof Error || this.#fatal) {
      // HPE_*: a malformed answer (llhttp, strict). Told at once, in the read that found it: an
      // answer whose head came in the same read is known to be bad before anything is relayed.
      // (A refused switch of protocols is no parse error to Node's binding: #fatal says it.)
      const err = this.#err ?? (r as Error);
      this.#err = err;
      const p = this.#p;
      if (p !== undefined) {
        this.#detachBody(p);
        p.fail(err);
      }
      this.socket.destroy();
      return;
    }
    if (this.#stray) {
      this.#err ??= errorOf('SocketError', 'answer without a request');
      this.socket.destroy();
      return;
    }
    if (this.#complete) this.#release();
  }

  #onData(chunk: Buffer): void {
    // Only when the stream could not be handed to the parser.
    this.#afterExecute((this.#parser as Parser).execute(chunk));
  }

  /** The request is over: the connection goes back to the pool if both sides allow it. */
  #release(): void {
    const p = this.#p;
    if (p === undefined) return;
    if (!this.#bodyDone) {
      // Answered before its body was sent (413, an early error): the body is left, and with it the connection.
      this.#detachBody(p);
      this.#p = undefined;
      this.socket.destroy();
      return;
    }
    this.#p = undefined;
    p.conn = undefined;
    this.#complete = false;
    if (!this.#keepAlive || this.state === CLOSED || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    if (this.#readPaused) this.#resumeReads();
    this.#pool.release(this);
  }

  /** Made idle by the pool: closed after its idle time. */
  idle(): void {
    this.state = IDLE;
    this.#arm(IDLE_TIMER, this.#idleMs);
  }

  #resume(): void {
    if (!this.#readPaused || this.state === CLOSED) return;
    this.#resumeReads();
    if (this.#p !== undefined && this.#headersDone && !this.#complete) this.#arm(BODY_TIMER, this.#pool.bodyTimeout);
  }

  #pauseReads(): void {
    this.#readPaused = true;
    if (this.#timerKind === BODY_TIMER) this.#disarm(); // the reader holds the body back: not the server's stall
    const h = this.#handle;
    if (h === undefined) this.socket.pause();
    else if (h.reading !== false && !this.socket.destroyed) {
      h.reading = false;
      h.readStop();
    }
  }

  #resumeReads(): void {
    this.#readPaused = false;
    const h = this.#handle;
    if (h === undefined) this.socket.resume();
    else if (h.reading !== true && !this.socket.destroyed) {
      h.reading = true;
      h.readStart();
    }
  }

  #onEnd(): void {
    // The server closed its side: a close-delimited body ends here; anything else half-read failed.
    const r = (this.#parser as Parser).finish();
    if (r instanceof Error) this.#err ??= errorOf('SocketError', 'other side closed');
    else if (this.#complete && this.#p !== undefined) {
      this.#p = undefined;
      this.#complete = false;
    }
    this.socket.destroy();
  }

  #onSocketError(err: Error): void {
    this.#err ??= err;
    if (this.socket.destroyed) return; // destroyed with this error: 'close' follows
    // A write failed and the socket is still open for reading. While a request's body was going
    // out and its answer is still to come, the answer may already be on its way (an early 413):
    // the body stops, and the connection stays up to read it, within the headers deadline. Its
    // end, or a read error (the reset), closes the socket; the request then fails with this error.
    const p = this.#p;
    if (p !== undefined && !p.finished && !this.#bodyDone && !this.#complete && this.#pool.headersTimeout > 0) {
      this.#detachBody(p);
      if (!this.#headersDone) this.#arm(HEADERS_TIMER, this.#pool.headersTimeout);
      return;
    }
    this.socket.destroy();
  }

  #onClose(): void {
    if (this.state === CLOSED) return;
    const wasConnected = this.connected;
    this.state = CLOSED;
    this.#disarm();
    this.#cancel?.();
    this.#cancel = undefined;
    const p = this.#p;
    this.#p = undefined;
    let again: Pending | undefined;
    if (p !== undefined && !p.finished) {
      this.#detachBody(p);
      // A kept-alive connection the server closed as the request went out: nothing of an answer
      // came, and an idempotent request with no body to resend goes once more on a new connection
      // (RFC 9112 9.3.1; as Go's and Finagle's clients do). Anything else fails: the router decides.
      if (this.#exchanges > 1 && !this.#answered && !p.retried && p.body === null && IDEMPOTENT.has(p.method) && this.#err?.message !== 'bad upgrade') {
        p.retried = true;
        p.conn = undefined;
        again = p;
      } else p.fail(this.#err ?? errorOf('SocketError', 'other side closed'));
    }
    const parser = this.#parser;
    if (parser !== undefined) {
      if (this.#handle !== undefined) parser.unconsume();
      setImmediate(() => parser.close()); // never while one of its callbacks may still be on the stack
    }
    this.#pool.closed(this, wasConnected, this.#err, again);
  }

  // The timer.

  #arm(kind: number, ms: number): void {
    if (!(ms > 0) || !Number.isFinite(ms)) {
      this.#timerKind = NO_TIMER;
      return;
    }
    const clock = this.#pool.clock;
    const at = clock.now() + ms;
    this.#timerKind = kind;
    this.#deadline = at;
    if (this.#armedAt > at) {
      this.#cancel?.();
      this.#armedAt = at;
      this.#cancel = clock.schedule(ms, this.#onTimer);
    }
  }

  #disarm(): void {
    this.#timerKind = NO_TIMER; // the armed call, when it comes, finds nothing to do
  }

  #timer(): void {
    this.#armedAt = Number.POSITIVE_INFINITY;
    this.#cancel = undefined;
    const kind = this.#timerKind;
    if (kind === NO_TIMER || this.state === CLOSED) return;
    const clock = this.#pool.clock;
    const left = this.#deadline - clock.now();
    if (left > 0) {
      this.#armedAt = this.#deadline;
      this.#cancel = clock.schedule(left, this.#onTimer);
      return;
    }
    this.#timerKind = NO_TIMER;
    const pool = this.#pool;
    switch (kind) {
      case CONNECT_TIMER:
        this.#err = errorOf('ConnectTimeoutError', `Connect Timeout Error (attempted address: ${pool.hostPort}, timeout: ${pool.connectTimeout}ms)`);
        break;
      case HEADERS_TIMER:
        if (!this.#bodyDone && !this.socket.writableNeedDrain) {
          // Still sending a body the server takes: the client is slow, not the server (its body has its own idle bound).
          this.#arm(HEADERS_TIMER, pool.headersTimeout);
          return;
        }
        this.#err = errorOf('HeadersTimeoutError', 'Headers Timeout Error');
        break;
      case BODY_TIMER:
        this.#err = errorOf('BodyTimeoutError', 'Body Timeout Error');
        break;
    }
    const p = this.#p;
    if (p !== undefined && this.#err !== undefined) {
      this.#detachBody(p);
      p.fail(this.#err);
    }
    this.socket.destroy();
  }
}

/** Whether trailers leave a connection reusable: no Connection: close, no framing fields (which llhttp takes as the end of the connection). */
function trailersKeepAlive(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const k = (raw[i] as string).toLowerCase();
    if (k === 'transfer-encoding' || k === 'content-length') return false;
    if (k === 'connection' && /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(raw[i + 1] as string)) return false;
  }
  return true;
}

/** Whether an answer's version and Connection field keep its connection open (RFC 9112 9.3). */
function headKeepAlive(major: number, minor: number, raw: string[]): boolean {
  let close = false;
  let keep = false;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    if (k.length !== 10 || k.toLowerCase() !== 'connection') continue;
    for (const t of (raw[i + 1] as string).toLowerCase().split(',')) {
      const v = t.trim();
      if (v === 'close') close = true;
      else if (v === 'keep-alive') keep = true;
    }
  }
  if (close) return false;
  return major > 1 || (major === 1 && minor >= 1) || keep;
}

function ignore(): void {}

// ---------------------------------------------------------------------------------------------

/**
 * The pool: connections in the order they were opened, each request on the first idle one (so a
 * light load runs on the oldest, the floor, and the rest go idle and close), a new one while under
 * `connections`, else a wait queue. Emits undici's 'connect', 'disconnect' and 'connectionError'.
 */
export class H1Pool extends Dispatcher {
  /** The origin (scheme://host:port) named by the connection events; parsed to a URL only when one is emitted with a listener. */
  readonly #origin: string;
  readonly #host: string;
  readonly #port: number;
  readonly #hostHeader: string;
  readonly #secure: boolean;
  readonly #o: H1PoolOptions;
  readonly #conns: Conn[] = [];
  readonly #queue = new WaitQueue<Pending>();
  #floor = 0;
  #closing = false;
  #destroyed = false;
  #closeWaiters: (() => void)[] | undefined;
  /** The last TLS session a connection of this pool was given, resumed by the next one. */
  session: Buffer | undefined;
  readonly clock: Clock;
  readonly connectTimeout: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly keepAliveThreshold: number;
  readonly maxHeaderSize: number;

  constructor(origin: string | URL, o: H1PoolOptions) {
    super();
    // Parsed once here; not kept (a URL object per pool, and thousands of pools while binding many services).
    const url = new URL(origin);
    this.#origin = url.origin;
    this.#secure = url.protocol === 'https:';
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = Number(url.port) || (this.#secure ? 443 : 80);
    this.#hostHeader = url.host;
    this.#o = o;
    this.clock = o.clock ?? systemClock;
    this.connectTimeout = o.connect.timeout ?? 10_000;
    this.headersTimeout = o.headersTimeout;
    this.bodyTimeout = o.bodyTimeout;
    this.keepAliveThreshold = o.keepAliveTimeoutThreshold ?? 2_000;
    this.maxHeaderSize = o.maxHeaderSize ?? 0; // 0: Node's --max-http-header-size (16 KiB)
  }

  /** The address connections go to, as the connect timeout's message names it. */
  get hostPort(): string {
    return `${net.isIPv6(this.#host) ? `[${this.#host}]` : this.#host}:${this.#port}`;
  }

  /**
   * Emits a connection event with undici's arguments: the origin as a URL (made only for a
   * listener), the dispatchers (undici names the Client; a connection here is no dispatcher), and
   * for a closed connection why (`null`: closed with no error).
   */
  #emitConn(event: 'connect' | 'disconnect' | 'connectionError', err?: Error | null): void {
    const self = this as EventEmitter;
    if (self.listenerCount(event) === 0) return;
    const origin = new URL(this.#origin);
    if (err === undefined) self.emit(event, origin, [this]);
    else self.emit(event, origin, [this], err ?? errorOf('SocketError', 'closed'));
  }

  /** Connections open or opening. */
  get connections(): number {
    return this.#conns.length;
  }

  override dispatch(opts: U.Dispatcher.DispatchOptions, handler: U.Dispatcher.DispatchHandler): boolean {
    const h = UnwrapHandler.unwrap(handler as object);
    if (this.#closing || this.#destroyed) {
      h.onError(errorOf(this.#destroyed ? 'ClientDestroyedError' : 'ClientClosedError'));
      return false;
    }
    let p: Pending;
    try {
      p = new Pending(opts, h, this.#hostHeader);
    } catch (err) {
      h.onError(err as Error);
      return false;
    }
    try {
      h.onConnect?.(p.abort);
    } catch (err) {
      p.fail(err as Error);
      return false;
    }
    if (p.finished) return true; // aborted from onConnect
    this.#assign(p);
    return true;
  }

  /** `fresh`: a new connection while under the bound (a retry must not meet another stale one). */
  #assign(p: Pending, fresh = false): void {
    const conns = this.#conns;
    if (fresh && conns.length < this.#o.connections) {
      this.#open().run(p);
      return;
    }
    for (let i = 0; i < conns.length; i++) {
      const c = conns[i] as Conn;
      // Idle, or still connecting with no request (its own was aborted during the handshake).
      if (c.state === IDLE || c.state === CONNECTING) {
        c.run(p);
        return;
      }
    }
    if (conns.length < this.#o.connections) this.#open().run(p);
    else this.#queue.push(p);
  }

  #open(): Conn {
    const o = this.#o;
    const floor = this.#floor < (o.minSize ?? 0);
    if (floor) this.#floor++;
    let socket: net.Socket;
    if (this.#secure) {
      const { timeout: _t, ...rest } = o.connect;
      const servername = rest.servername ?? (net.isIP(this.#host) === 0 ? this.#host : undefined);
      socket = tls.connect({
        ...rest,
        host: this.#host,
        port: this.#port,
        ...(servername !== undefined ? { servername } : {}),
        ...(this.session !== undefined ? { session: this.session } : {}),
        ALPNProtocols: ['http/1.1'],
      });
    } else {
      socket = net.connect({ host: this.#host, port: this.#port });
    }
    socket.setKeepAlive(true, 60_000);
    const c = new Conn(this, socket, this.#secure, floor);
    if (this.#secure) socket.on('session', onSocketSession);
    this.#conns.push(c);
    return c;
  }

  /** How long `c` stays open while idle (before any Keep-Alive hint). */
  idleMsOf(c: Conn): number {
    return c.floor ? (this.#o.floorKeepAlive ?? this.#o.keepAliveTimeout) : this.#o.keepAliveTimeout;
  }

  /** The longest a Keep-Alive hint may keep `c` idle. */
  maxIdleMsOf(c: Conn): number {
    return c.floor ? (this.#o.floorKeepAlive ?? this.#o.keepAliveMaxTimeout) : this.#o.keepAliveMaxTimeout;
  }

  /** Called by a connection once connected. */
  connected(): void {
    this.#emitConn('connect');
  }

  /** A connection is free: the next waiting request, or idle (or closed, while the pool closes). */
  release(c: Conn): void {
    if (!this.#destroyed) {
      // A closing pool still carries what was queued before close() (as undici's does).
      for (;;) {
        const next = this.#queue.shift();
        if (next === null) break;
        if (next.finished) continue; // aborted while waiting
        c.run(next);
        return;
      }
    }
    if (this.#closing || this.#destroyed) c.socket.destroy();
    else c.idle();
  }

  /** A connection closed: out of the pool; a waiting request gets a new one. */
  closed(c: Conn, wasConnected: boolean, err: Error | undefined, again?: Pending): void {
    const i = this.#conns.indexOf(c);
    if (i >= 0) this.#conns.splice(i, 1);
    if (c.floor) this.#floor--;
    this.#emitConn(wasConnected ? 'disconnect' : 'connectionError', err ?? null);
    if (this.#destroyed) {
      again?.fail(err ?? errorOf('SocketError', 'other side closed'));
      if (this.#conns.length === 0) this.#settleClose();
      return;
    }
    if (again !== undefined) {
      this.#assign(again, true);
      return;
    }
    for (;;) {
      const next = this.#queue.shift();
      if (next === null) break;
      if (next.finished) continue;
      this.#assign(next);
      return;
    }
    if (this.#closing && this.#conns.length === 0) this.#settleClose();
  }

  /** Takes no new requests; resolves once those in flight are done and every connection is closed. */
  override close(callback?: () => void): Promise<void> {
    this.#closing = true;
    const done = new Promise<void>((resolve) => {
      if (this.#conns.length === 0) resolve();
      else (this.#closeWaiters ??= []).push(resolve);
    });
    for (const c of [...this.#conns]) if (c.state === IDLE) c.socket.destroy(); // busy ones close when their answer is done
    if (callback !== undefined) void done.then(callback);
    return done;
  }

  /** Fails what waits and what is in flight, closes every connection. */
  override destroy(err?: Error | null | (() => void), callback?: () => void): Promise<void> {
    const cb = typeof err === 'function' ? err : callback;
    const reason = err instanceof Error ? err : errorOf('ClientDestroyedError');
    this.#destroyed = true;
    for (;;) {
      const next = this.#queue.shift();
      if (next === null) break;
      next.fail(reason);
    }
    const done = new Promise<void>((resolve) => {
      if (this.#conns.length === 0) resolve();
      else (this.#closeWaiters ??= []).push(resolve);
    });
    for (const c of [...this.#conns]) c.socket.destroy(reason);
    if (cb !== undefined) void done.then(cb);
    return done;
  }

  #settleClose(): void {
    const waiters = this.#closeWaiters;
    this.#closeWaiters = undefined;
    if (waiters !== undefined) for (const w of waiters) w();
  }
}
