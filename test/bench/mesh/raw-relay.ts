// Issue 28's design 2 as a prototype: a lean HTTP/1.1 forwarding core on raw sockets. Requests and
// responses are parsed by Node's own llhttp binding (HTTPParser from `_http_common`: the parser
// Node's http server and client use, same strictness, no runtime deprecation warning, unlike
// `process.binding('http_parser')`, DEP0111); the head is parsed once, only the headers a router
// must touch are rewritten (hop-by-hop and Connection-named ones dropped, `Via` added, framing
// set), head and small body leave in ONE write, bodies are relayed chunk by chunk with
// back-pressure both ways. No IncomingMessage, ServerResponse, Readable or promise per request.
// One request in flight per client connection: a pipelined request is refused (the connection
// closes after the current response). Benchmark code, not the router: no routing, no limits
// beyond llhttp's header size, no timeouts but the idle keep-alive one.

import { createRequire } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import type { Parser, ParserClass, StreamHandle } from '../../../src/core/h1-pool.js';

// The binding's shape is the lean client's (src/core/h1-pool.ts), which checks it at load.
type HttpParser = Parser;
type HttpParserClass = ParserClass;
const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as { HTTPParser: HttpParserClass; methods: string[] };

/**
 * `consume`: the socket's reads go straight into the parser in C++ (Node's http server does this;
 * no Buffer, Readable push or 'data' event per read), and `after` runs after each read's parse.
 * Undefined when the socket has no native stream to hand over.
 */
function consume(socket: net.Socket, parser: HttpParser, after: (r: number | Error) => void): StreamHandle | undefined {
  const h = (socket as unknown as { _handle?: StreamHandle })._handle;
  if (h?.isStreamBase !== true || h._consumed === true) return undefined;
  h._consumed = true;
  parser[HTTPParser.kOnExecute] = after;
  parser.consume(h);
  return h;
}

/** Stops or restarts reading (back-pressure): on the native stream when a parser consumes it. */
function setReading(socket: net.Socket, consumed: StreamHandle | undefined, on: boolean): void {
  if (consumed === undefined) {
    if (on) socket.resume();
    else socket.pause();
  } else if (consumed.reading !== on && !socket.destroyed) {
    consumed.reading = on;
    if (on) consumed.readStart();
    else consumed.readStop();
  }
}

type HeadCallback = (
  major: number,
  minor: number,
  headers: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  status: number | undefined,
  reason: string | undefined,
  upgrade: boolean,
  keepAlive: boolean,
) => number;

/** Head and body pieces waiting for one write: latin1 strings (heads, chunk framing) and Buffers. */
type Piece = string | Buffer;
const ONE_WRITE = 16_384; // pieces up to this many bytes are copied into one buffer and written once
const HIGH_WATER = 65_536; // request bytes held while no upstream connection is ready
const KEEP_ALIVE_MS = 60_000;
const VIA = 'Via: 1.1 hostmesh\r\n';
const CRLF = '\r\n';
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
const BAD_GATEWAY = `HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n${VIA}`;
const VERSION_NOT_SUPPORTED = 'HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
const NOT_IMPLEMENTED = 'HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

/** Writes the pieces in one write (copied into one buffer when small, corked writev when large). */
function writePieces(socket: net.Socket, pieces: Piece[], bytes: number): boolean {
  let ok = true;
  if (pieces.length === 1) {
    const p = pieces[0] as Piece;
    ok = typeof p === 'string' ? socket.write(p, 'latin1') : socket.write(p);
  } else if (bytes <= ONE_WRITE) {
    const buf = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const p of pieces) at += typeof p === 'string' ? buf.write(p, at, 'latin1') : p.copy(buf, at);
    ok = socket.write(buf);
  } else {
    socket.cork();
    for (const p of pieces) ok = typeof p === 'string' ? socket.write(p, 'latin1') : socket.write(p);
    socket.uncork();
  }
  pieces.length = 0;
  return ok;
}

/** What the rewritten head says about the message's framing. */
interface Head {
  text: string;
  chunked: boolean; // Transfer-Encoding ending in chunked
  length: boolean; // Content-Length present
  hosts: number; // Host headers seen
}

/**
 * Copies a parsed head's headers except the hop-by-hop ones (RFC 9110 7.6.1: Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and every header the
 * Connection header names). llhttp has already checked names (tokens) and values (no CR, LF, NUL).
 */
function rewrite(first: string, raw: string[], out: Head): void {
  let text = first;
  let named: string[] | undefined;
  out.chunked = false;
  out.length = false;
  out.hosts = 0;
  // Connection-named headers first: rare, so only a cheap scan in the common case.
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    if (k.length === 10 && k.toLowerCase() === 'connection') {
      for (const t of (raw[i + 1] as string).split(',')) {
        const n = t.trim().toLowerCase();
        if (n !== '' && n !== 'close' && n !== 'keep-alive') (named ??= []).push(n);
      }
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    const v = raw[i + 1] as string;
    switch (k.length) {
      case 2:
      case 7:
      case 10:
      case 16: {
        const l = k.toLowerCase();
        if (l === 'te' || l === 'trailer' || l === 'upgrade' || l === 'connection' || l === 'keep-alive' || l === 'proxy-connection') continue;
        break;
      }
      case 4:
        if (k.toLowerCase() === 'host') out.hosts++;
        break;
      case 14:
        if (k.toLowerCase() === 'content-length') out.length = true;
        break;
      case 17:
        if (k.toLowerCase() === 'transfer-encoding') {
          // llhttp rejects a request whose last coding is not chunked, and Content-Length beside
          // Transfer-Encoding; a response with another last coding is read until close.
          out.chunked = /(?:^|,)[ \t]*chunked[ \t]*$/i.test(v);
          continue;
        }
        break;
    }
    if (named?.includes(k.toLowerCase())) continue;
    text += `${k}: ${v}\r\n`;
  }
  out.text = text;
}

/** The connection pool towards the next hop: idle connections last-in first-out, a bounded count. */
export class RawPool {
  readonly #connect: () => net.Socket;
  readonly #secure: boolean;
  readonly #max: number;
  readonly consume: boolean;
  readonly #idle: Upstream[] = [];
  readonly #waiting: Downstream[] = [];
  #count = 0;

  constructor(connect: () => net.Socket, secure: boolean, max: number, consume: boolean) {
    this.consume = consume;
    this.#connect = connect;
    this.#secure = secure;
    this.#max = max;
  }

  acquire(d: Downstream): void {
    const up = this.#idle.pop();
    if (up !== undefined) up.bind(d);
    else if (this.#count < this.#max) this.#open().bind(d);
    else this.#waiting.push(d);
  }

  release(up: Upstream): void {
    const d = this.#waiting.shift();
    if (d !== undefined) up.bind(d);
    else this.#idle.push(up);
  }

  forget(d: Downstream): void {
    const i = this.#waiting.indexOf(d);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  closed(up: Upstream): void {
    this.#count--;
    const i = this.#idle.indexOf(up);
    if (i >= 0) this.#idle.splice(i, 1);
    const d = this.#waiting.shift();
    if (d !== undefined) this.#open().bind(d);
  }

  #open(): Upstream {
    this.#count++;
    return new Upstream(this, this.#connect(), this.#secure);
  }
}

/** One kept-alive connection to the next hop, with its response parser. */
class Upstream {
  readonly socket: net.Socket;
  readonly #pool: RawPool;
  readonly #parser = new HTTPParser();
  readonly #head: Head = { text: '', chunked: false, length: false, hosts: 0 };
  down: Downstream | undefined;
  ready = false;
  used = 0; // exchanges bound, for the retry of a request lost to a connection the peer closed
  #keepAlive = false;
  #info = false; // parsing a 1xx response
  #done = false; // the response completed during this execute()
  #chunked = false; // the client gets the body re-chunked
  #gotBytes = false;
  #headers: string[] = [];
  #closed = false;
  #consumed: StreamHandle | undefined;
  #readsPaused = false;

  constructor(pool: RawPool, socket: net.Socket, secure: boolean) {
    this.#pool = pool;
    this.socket = socket;
    const p = this.#parser;
    p.initialize(HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
    p[HTTPParser.kOnHeaders] = (h: string[]) => {
      for (const x of h) this.#headers.push(x);
    };
    p[HTTPParser.kOnHeadersComplete] = this.#onHead;
    p[HTTPParser.kOnBody] = this.#onBody;
    p[HTTPParser.kOnMessageComplete] = this.#onComplete;
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      this.ready = true;
      if (pool.consume) this.#consumed = consume(socket, p, this.#afterExecute);
      this.down?.flushUp();
    });
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('drain', () => this.down?.upDrained());
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', this.#onClose);
  }

  bind(d: Downstream): void {
    this.down = d;
    this.used++;
    this.#gotBytes = false;
    d.up = this;
    if (this.ready) d.flushUp();
  }

  destroy(): void {
    this.down = undefined;
    this.socket.destroy();
  }

  reading(on: boolean): void {
    this.#readsPaused = !on;
    setReading(this.socket, this.#consumed, on);
  }

  #onData = (chunk: Buffer): void => {
    this.#afterExecute(this.#parser.execute(chunk));
  };

  #afterExecute = (r: number | Error): void => {
    this.#gotBytes = true;
    const d = this.down;
    if (r instanceof Error) {
      this.socket.destroy(); // 'close' answers 502 or drops the client
      return;
    }
    if (d === undefined) return;
    d.flushClient();
    if (this.#done) this.#finish(d);
  };

  #onEnd = (): void => {
    // A close-delimited body ends here; otherwise 'close' reports the failure.
    const d = this.down;
    const r = this.#parser.finish();
    if (d !== undefined && !(r instanceof Error)) {
      d.flushClient();
      if (this.#done) this.#finish(d);
    }
    this.socket.destroy();
  };

  #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.ready = false;
    const d = this.down;
    this.down = undefined;
    this.#pool.closed(this);
    if (d !== undefined) d.upstreamLost(this.used > 1 && !this.#gotBytes);
    if (this.#consumed !== undefined) this.#parser.unconsume();
    setImmediate(() => this.#parser.close());
  };

  #onHead: HeadCallback = (_major, _minor, headers, _method, _url, status = 0, reason = '', _upgrade, keepAlive) => {
    let raw = headers;
    if (raw === undefined) {
      raw = this.#headers;
      this.#headers = [];
    }
    const d = this.down;
    if (d === undefined || status === 101) {
      // A response nobody asked for, or a switch of protocols the prototype never requests.
      this.#keepAlive = false;
      this.socket.destroy();
      return 0;
    }
    const h = this.#head;
    rewrite(`HTTP/1.1 ${status} ${reason}\r\n`, raw, h);
    if (status < 200) {
      // 1xx (100 Continue, 103 Early Hints): passed on, the final response follows.
      this.#info = true;
      d.toClient(`${h.text}\r\n`);
      return 0;
    }
    this.#keepAlive = keepAlive;
    let text = h.text + VIA;
    const bodyless = d.isHead || status === 204 || status === 304;
    this.#chunked = false;
    if (!bodyless && !h.length) {
      // Chunked or close-delimited upstream: chunked to an HTTP/1.1 client, until close otherwise.
      if (d.http11) {
        this.#chunked = true;
        text += 'Transfer-Encoding: chunked\r\n';
      } else d.closeAfter = true;
    }
    if (!d.keepAlive || d.closeAfter) text += 'Connection: close\r\n';
    else if (!d.http11) text += 'Connection: keep-alive\r\n';
    d.headSent = true;
    d.toClient(text + CRLF);
    return d.isHead ? 1 : 0; // 1: a response to HEAD has no body whatever its headers say
  };

  #onBody = (b: Buffer): void => {
    const d = this.down;
    if (d === undefined) return;
    if (this.#chunked) {
      d.toClient(b.length.toString(16) + CRLF);
      d.toClient(b);
      d.toClient(CRLF);
    } else d.toClient(b);
  };

  #onComplete = (): void => {
    if (this.#info) {
      this.#info = false;
      return;
    }
    this.#headers = []; // trailers are not passed on (the prototype re-chunks without them)
    if (this.#chunked) this.down?.toClient('0\r\n\r\n');
    this.#done = true;
  };

  /** The response is complete and written: reuse the connection if both sides allow it. */
  #finish(d: Downstream): void {
    this.#done = false;
    this.down = undefined;
    d.up = undefined;
    if (this.#readsPaused) this.reading(true); // paused for the client's back-pressure
    if (this.#keepAlive && d.requestDone && !this.socket.destroyed) this.#pool.release(this);
    else this.socket.destroy();
    d.responseDone();
  }
}

/** One client connection: the request parser and the one exchange in flight. */
export class Downstream {
  readonly #socket: net.Socket;
  readonly #pool: RawPool;
  readonly #parser = new HTTPParser();
  readonly #head: Head = { text: '', chunked: false, length: false, hosts: 0 };
  up: Upstream | undefined;
  busy = false; // a request is in flight (head seen, response not complete)
  isHead = false;
  http11 = true;
  keepAlive = true;
  closeAfter = false;
  headSent = false;
  requestDone = false;
  #refused = false; // a pipelined request or an upgrade was refused: ignore the rest
  #reqChunked = false;
  #requestHead = '';
  #hasBody = false;
  #retried = false;
  #toUp: Piece[] = [];
  #toUpBytes = 0;
  #toClient: Piece[] = [];
  #toClientBytes = 0;
  #pausedForUp = false;
  #pausedForClient = false;
  #parsing = false; // inside execute(): writes wait for its end, so head and body leave together
  #headers: string[] = [];
  #url = '';
  #closed = false;
  readonly #consumed: StreamHandle | undefined;

  constructor(socket: net.Socket, pool: RawPool) {
    this.#socket = socket;
    this.#pool = pool;
    const p = this.#parser;
    p.initialize(HTTPParser.REQUEST, {}, 0, HTTPParser.kLenientNone);
    p[HTTPParser.kOnHeaders] = (h: string[], url: string) => {
      for (const x of h) this.#headers.push(x);
      if (url) this.#url += url;
    };
    p[HTTPParser.kOnHeadersComplete] = this.#onHead;
    p[HTTPParser.kOnBody] = this.#onBody;
    p[HTTPParser.kOnMessageComplete] = this.#onComplete;
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('drain', this.#onDrain);
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', this.#onClose);
    socket.setTimeout(KEEP_ALIVE_MS);
    if (pool.consume) this.#consumed = consume(socket, p, this.#afterExecute);
  }

  toClient(p: Piece): void {
    this.#toClient.push(p);
    this.#toClientBytes += p.length;
  }

  flushClient(): void {
    if (this.#toClient.length === 0) return;
    const ok = writePieces(this.#socket, this.#toClient, this.#toClientBytes);
    this.#toClientBytes = 0;
    if (!ok && this.up !== undefined && !this.#pausedForClient) {
      this.#pausedForClient = true;
      this.up.reading(false);
    }
  }

  /** Writes what the request has produced so far once the upstream connection is ready. */
  flushUp(): void {
    const up = this.up;
    if (up === undefined || !up.ready || this.#parsing || this.#toUp.length === 0) return;
    const ok = writePieces(up.socket, this.#toUp, this.#toUpBytes);
    this.#toUpBytes = 0;
    if (!ok) this.#pauseForUp();
    else if (this.#pausedForUp) this.upDrained();
  }

  upDrained(): void {
    if (this.#pausedForUp) {
      this.#pausedForUp = false;
      setReading(this.#socket, this.#consumed, true);
    }
  }

  /** The upstream connection closed before the response completed. */
  upstreamLost(unused: boolean): void {
    this.up = undefined;
    if (this.headSent) {
      this.#socket.destroy();
      return;
    }
    // A kept-alive connection the peer closed as the request went out: once more on a new one,
    // if the request had no body (nothing of it was consumed).
    if (unused && !this.#hasBody && !this.#retried && this.requestDone) {
      this.#retried = true;
      this.#toUp.length = 0;
      this.#toUp.push(this.#requestHead);
      this.#toUpBytes = this.#requestHead.length;
      this.#pool.acquire(this);
      return;
    }
    if (!this.requestDone) this.closeAfter = true;
    this.toClient(this.closeAfter || !this.keepAlive ? `${BAD_GATEWAY}Connection: close\r\n\r\n` : `${BAD_GATEWAY}\r\n`);
    this.flushClient();
    this.responseDone();
  }

  /** The response went out whole: next request, or close. */
  responseDone(): void {
    this.busy = false;
    this.headSent = false;
    if (this.#pausedForClient) this.#pausedForClient = false;
    if (!this.requestDone) this.closeAfter = true; // the rest of the body cannot be framed
    if (this.closeAfter || !this.keepAlive) {
      this.#refused = true;
      this.#socket.end();
      return;
    }
    this.#socket.setTimeout(KEEP_ALIVE_MS);
    if (this.#pausedForUp) this.upDrained();
  }

  #pauseForUp(): void {
    if (!this.#pausedForUp) {
      this.#pausedForUp = true;
      setReading(this.#socket, this.#consumed, false);
    }
  }

  #onData = (chunk: Buffer): void => {
    this.#afterExecute(this.#parser.execute(chunk));
  };

  #afterExecute = (r: number | Error): void => {
    this.#parsing = false;
    if (r instanceof Error) {
      this.#refused = true;
      this.#toUp.length = 0;
      const up = this.up;
      if (up !== undefined) {
        this.up = undefined;
        up.destroy();
      }
      this.#pool.forget(this);
      if (this.headSent) this.#socket.destroy();
      else this.#socket.end(BAD_REQUEST, 'latin1');
      return;
    }
    if (this.#toUp.length > 0) {
      this.flushUp();
      if (this.#toUpBytes > HIGH_WATER) this.#pauseForUp();
    }
  };

  #onDrain = (): void => {
    if (this.#pausedForClient) {
      this.#pausedForClient = false;
      this.up?.reading(true);
    }
  };

  #onEnd = (): void => {
    // Half-closed by the client: answer what is in flight, then close.
    if (this.busy) this.closeAfter = true;
    else this.#socket.end();
  };

  #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    const up = this.up;
    this.up = undefined;
    // The client is gone mid-exchange: the upstream connection is in an unknown state.
    if (up !== undefined) up.destroy();
    this.#pool.forget(this);
    if (this.#consumed !== undefined) this.#parser.unconsume();
    setImmediate(() => this.#parser.close());
  };

  #onHead: HeadCallback = (major, minor, headers, method = 0, url, _status, _reason, upgrade, keepAlive) => {
    let raw = headers;
    if (raw === undefined) {
      raw = this.#headers;
      this.#headers = [];
    }
    const target = url || this.#url;
    this.#url = '';
    if (this.#refused) return 0;
    this.#parsing = true; // until the read's parse ends (#afterExecute)
    if (this.busy) {
      // Pipelined: answer the request in flight, then close; the client retries this one.
      this.#refused = true;
      this.closeAfter = true;
      return 0;
    }
    if (upgrade) {
      // Upgrade and CONNECT need a tunnel the prototype does not build.
      this.#refused = true;
      this.#socket.end(NOT_IMPLEMENTED, 'latin1');
      return 0;
    }
    const m = methods[method] ?? 'GET';
    const h = this.#head;
    rewrite(`${m} ${target} HTTP/1.1\r\n`, raw, h);
    // What llhttp leaves to the server (Node's http server checks some of it too): HTTP/1.x only;
    // exactly one Host in HTTP/1.1, at most one in 1.0 (RFC 9112 3.2).
    if (major !== 1 || h.hosts > 1 || (minor === 1 && h.hosts === 0)) {
      this.#refused = true;
      this.#socket.end(major !== 1 ? VERSION_NOT_SUPPORTED : BAD_REQUEST, 'latin1');
      return 0;
    }
    let text = h.text + VIA;
    if (h.hosts === 0) text += 'Host: world\r\n';
    // Transfer-Encoding in HTTP/1.0: faulty framing, close after this message (RFC 9112 6.1).
    if (h.chunked && minor === 0) keepAlive = false;
    this.#reqChunked = h.chunked;
    if (h.chunked) text += 'Transfer-Encoding: chunked\r\n';
    this.#hasBody = h.chunked || h.length;
    text += CRLF;
    this.busy = true;
    this.requestDone = false;
    this.headSent = false;
    this.#retried = false;
    this.isHead = m === 'HEAD';
    this.http11 = major === 1 && minor === 1;
    this.keepAlive = keepAlive;
    this.#requestHead = text;
    this.#toUp.push(text);
    this.#toUpBytes += text.length;
    this.#socket.setTimeout(0);
    this.#pool.acquire(this);
    return 0;
  };

  #onBody = (b: Buffer): void => {
    if (this.#refused) return;
    if (this.#reqChunked) {
      const size = b.length.toString(16) + CRLF;
      this.#toUp.push(size, b, CRLF);
      this.#toUpBytes += size.length + b.length + 2;
    } else {
      this.#toUp.push(b);
      this.#toUpBytes += b.length;
    }
  };

  #onComplete = (): void => {
    if (this.#refused) return;
    this.#headers = []; // request trailers are not passed on
    if (this.#reqChunked) {
      this.#toUp.push('0\r\n\r\n');
      this.#toUpBytes += 5;
    }
    this.requestDone = true;
  };
}

/**
 * A raw hop: `secureIn` serves mutual TLS (tls.Server with requestCert), else plaintext; the next
 * hop is reached with `connect()` (a TLS socket when `secureOut`), up to `connections` at once.
 */
export function rawServer(opts: {
  secureIn: tls.TlsOptions | undefined;
  connect: () => net.Socket;
  secureOut: boolean;
  connections: number;
  consume: boolean;
}): net.Server {
  const pool = new RawPool(opts.connect, opts.secureOut, opts.connections, opts.consume);
  const onSocket = (socket: net.Socket): void => {
    new Downstream(socket, pool);
  };
  if (opts.secureIn !== undefined) {
    const s = tls.createServer({ ...opts.secureIn, allowHalfOpen: true });
    s.on('secureConnection', onSocket);
    s.on('tlsClientError', () => undefined);
    return s;
  }
  return net.createServer({ allowHalfOpen: true, noDelay: true }, onSocket);
}
