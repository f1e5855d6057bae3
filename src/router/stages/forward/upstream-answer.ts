// One HTTP/1 attempt on undici's dispatch API: the answer's head is parsed once, and its body goes
// straight from undici's parser into the client's ServerResponse. No Readable, no promise and no
// pipe per response (request() makes all three): the profiles of issue 28 put that machinery at
// 12-40 % of a router's CPU per request. Back-pressure is by hand: a full client socket pauses
// undici's parser (onData returns false) until the response drains.

import type { AbortEvents } from '../../../core/abort.js';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { transferCodings } from '../../headers.js';

/** Body bytes kept between an answer's head and the decision to relay or drop it (then the parser pauses). */
const HOLD_BYTES = 65_536;
/** Body bytes read and dropped from an answer that is not relayed before its connection is given up. */
const DISCARD_BYTES = 131_072;

type Mode = 'head' | 'held' | 'relay' | 'discard' | 'done';

/** Whether the response goes out on a TLS socket (a peer router's connection). */
function isTls(res: ServerResponse): boolean {
  return (res.socket as { encrypted?: boolean } | null)?.encrypted === true;
}

/** Raw [name, value, ...] fields as Node's IncomingHttpHeaders: lowercase names, repeats as arrays. */
export function headersOf(raw: readonly (Buffer | string)[] | null | undefined): IncomingHttpHeaders {
  // No prototype: a field named __proto__ or constructor is data, never the object's machinery.
  const out: Record<string, string | string[]> = Object.create(null);
  if (raw === null || raw === undefined) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    const key = (typeof name === 'string' ? name : name.toString('latin1')).toLowerCase();
    const v = raw[i + 1] as Buffer | string;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    const had = out[key];
    if (had === undefined) out[key] = value;
    else if (typeof had === 'string') out[key] = [had, value];
    else had.push(value);
  }
  return out as IncomingHttpHeaders;
}

/**
 * A transfer coding other than chunked in an answer's Transfer-Encoding fields, if there is one:
 * the router relays bodies with their chunks removed and framed again, so it can relay no other.
 */
function otherCoding(raw: readonly (Buffer | string)[]): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    if (name.length !== 17 || (typeof name === 'string' ? name : name.toString('latin1')).toLowerCase() !== 'transfer-encoding') continue;
    const v = raw[i + 1] as Buffer | string;
    const other = transferCodings(typeof v === 'string' ? v : v.toString('latin1')).find((c) => c !== 'chunked');
    if (other !== undefined) return other;
  }
  return undefined;
}

const NO_FIELDS: IncomingHttpHeaders = Object.freeze(Object.create(null) as IncomingHttpHeaders);

/**
 * The answer's `l5d-` fields as IncomingHttpHeaders (lowercase names, repeats as arrays): all that
 * the attempt loop (a peer router's requeue and draining marks) and the HTTP/1 classifiers
 * (`l5d-retryable`) read. The head itself is relayed from the raw list (forward.ts, relayHead),
 * so most answers, which carry none, make no object at all.
 */
export function markFieldsOf(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  let out: Record<string, string | string[]> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    if (name.length < 4) continue;
    const text = typeof name === 'string' ? name : name.toString('latin1');
    const c0 = text.charCodeAt(0) | 0x20;
    if (c0 !== 0x6c || text.charCodeAt(3) !== 0x2d) continue; // 'l' ... '-'
    const key = text.toLowerCase();
    if (!key.startsWith('l5d-')) continue;
    const v = raw[i + 1] as Buffer | string;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    out ??= Object.create(null) as Record<string, string | string[]>;
    const had = out[key];
    if (had === undefined) out[key] = value;
    else if (typeof had === 'string') out[key] = [had, value];
    else had.push(value);
  }
  return (out as IncomingHttpHeaders | undefined) ?? NO_FIELDS;
}

/**
 * An attempt's answer. `dispatch` resolves at its head (or rejects with why none came); then the
 * attempt loop either relays it (`relay`) or drops it (`discard`). Until then up to HOLD_BYTES of
 * its body are held. The attempt's signal aborts it until the head; while relaying, the client's
 * response closing does.
 */
export class UpstreamAnswer implements Dispatcher.DispatchHandler {
  status = 0;
  /** The answer's `l5d-` fields (markFieldsOf): what the attempt loop and the classifier read. */
  headers: IncomingHttpHeaders = NO_FIELDS;
  /** The answer's fields as the parser gave them: [name, value, ...], in order. */
  raw: readonly (Buffer | string)[] = [];
  readonly #res: ServerResponse;
  readonly #signal: AbortEvents;
  #mode: Mode = 'head';
  #abort: ((err?: Error) => void) | undefined;
  #reason: Error | undefined;
  #resume: (() => void) | undefined;
  #paused = false;
  #drainWait = false;
  /** Array.of, not a literal: a literal's allocation site may be pretenured (core/abort.ts, newList). */
  #held: Buffer[] = Array.of();
  #heldBytes = 0;
  #dropped = 0;
  /** The body ended (its trailers) or failed while held. */
  #ended: (Buffer | string)[] | null | undefined;
  #failed: Error | undefined;
  #settle: ((err?: Error) => void) | undefined;
  #fail: ((err: Error) => void) | undefined;
  #onError: ((err: Error) => void) | undefined;

  constructor(res: ServerResponse, signal: AbortEvents) {
    this.#res = res;
    this.#signal = signal;
  }

  /** Why the answer failed after its head and before it was relayed (a malformed body found in the head's read), if it did. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  /** Sends the request on `pool`; resolves once the answer's head is in. */
  dispatch(pool: Dispatcher, opts: Dispatcher.DispatchOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#settle = resolve as (err?: Error) => void; // resolves with no value either way
      this.#fail = reject;
      this.#signal.on('abort', this.#onAbort); // removed at the head or the error; on() skips once()'s wrapper
      pool.dispatch(opts, this);
    });
  }

  /**
   * Relays the held and remaining body into the client's response (its head is already written)
   * and ends it, with the answer's trailers. Resolves when the body ended or was cut; a cut (the
   * upstream failed, or the client left) destroys the response, never ends it as if complete.
   */
  relay(onError: (err: Error) => void): Promise<void> {
    this.#mode = 'relay';
    this.#onError = onError;
    const res = this.#res;
    return new Promise<void>((resolve) => {
      this.#settle = () => {
        res.off('close', this.#onClientClose);
        resolve();
      };
      res.on('close', this.#onClientClose); // removed when settled; a response closes once
      // Emptied in place, not replaced by a new array (a literal whose site V8 may pretenure):
      // from here on chunks are written, never held.
      const held = this.#held;
      this.#heldBytes = 0;
      this.#tls = isTls(res);
      for (const chunk of held) this.#write(chunk);
      held.length = 0;
      if (this.#failed !== undefined) this.#cut(this.#failed);
      else if (this.#ended !== undefined) this.#finish(this.#ended);
      else if (res.destroyed) this.#onClientClose();
      else if (this.#paused) {
        if (res.writableNeedDrain) this.#waitDrain();
        else this.#resumeParser();
      }
    });
  }

  /** Drops an answer that is not relayed: its body is read and dropped up to a bound, then the connection is given up. */
  discard(): Promise<void> {
    this.#mode = 'discard';
    this.#dropped = this.#heldBytes;
    this.#held.length = 0;
    this.#heldBytes = 0;
    if (this.#ended !== undefined || this.#failed !== undefined) return this.#done();
    return new Promise<void>((resolve) => {
      this.#settle = resolve as (err?: Error) => void; // resolves with no value either way
      if (this.#dropped > DISCARD_BYTES) this.#abortUpstream();
      else this.#resumeParser();
    });
  }

  // undici's handler (the dispatch API).

  onConnect(abort: (err?: Error) => void): void {
    if (this.#reason !== undefined) abort(this.#reason);
    else this.#abort = abort;
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // 1xx answers are not relayed (Node's response cannot send them on)
    const coding = otherCoding(raw);
    if (coding !== undefined) {
      // The parser removed the chunks only: relayed, the client would take the still-coded bytes
      // (gzip, ...) for the content. Refused as malformed (502) before anything is relayed.
      const reason = `transfer coding '${coding.slice(0, 40)}' is not supported (only chunked)`;
      throw Object.assign(new Error(reason), { code: 'HPE_INVALID_TRANSFER_ENCODING', reason });
    }
    this.status = status;
    this.raw = raw;
    this.headers = markFieldsOf(raw);
    this.#resume = resume;
    this.#mode = 'held';
    this.#signal.off('abort', this.#onAbort);
    const settle = this.#settle;
    this.#settle = undefined;
    this.#fail = undefined;
    settle?.();
    return true;
  }

  onData(chunk: Buffer): boolean {
    switch (this.#mode) {
      case 'relay':
        if (this.#write(chunk)) return true;
        if (this.#res.destroyed) return true; // onClientClose aborts
        this.#waitDrain();
        return false;
      case 'held':
        this.#held.push(chunk);
        this.#heldBytes += chunk.length;
        if (this.#heldBytes < HOLD_BYTES) return true;
        this.#paused = true;
        return false;
      case 'discard':
        this.#dropped += chunk.length;
        if (this.#dropped > DISCARD_BYTES) this.#abortUpstream();
        return true;
      default:
        return true;
    }
  }

  onComplete(trailers: (Buffer | string)[] | null): void {
    switch (this.#mode) {
      case 'relay':
        this.#finish(trailers);
        return;
      case 'held':
        this.#ended = trailers ?? [];
        return;
      case 'discard':
        this.#ended = [];
        void this.#done();
        return;
      default:
        return;
    }
  }

  onError(err: Error): void {
    switch (this.#mode) {
      case 'head': {
        this.#mode = 'done';
        this.#signal.off('abort', this.#onAbort);
        const fail = this.#fail;
        this.#settle = undefined;
        this.#fail = undefined;
        fail?.(err);
        return;
      }
      case 'held':
        this.#failed = err;
        return;
      case 'relay':
        this.#cut(err);
        return;
      case 'discard':
        this.#failed = err;
        void this.#done();
        return;
      default:
        return;
    }
  }

  // Internals.

  readonly #onAbort = (): void => {
    this.#abortUpstream();
  };

  readonly #onClientClose = (): void => {
    if (this.#mode !== 'relay' || this.#res.writableFinished) return;
    this.#abortUpstream(); // calls onError, which cuts
    if (this.#mode === 'relay') this.#cut(new Error('client closed the connection'));
  };

  // On a TLS socket (an answer to a peer router) a write completes later, and Node's end() with
  // data still on its way writes an empty buffer to the socket to learn when it left: one more
  // system call per answer. So writes there are counted, and the response ends when the last is done.
  #tls = false;
  #writing = 0;
  #endWhenWritten = false;

  #write(chunk: Buffer): boolean {
    if (!this.#tls) return this.#res.write(chunk);
    this.#writing++;
    return this.#res.write(chunk, this.#written);
  }

  /** A write on a TLS socket is done (a failed one: the socket closes, and #onClientClose cuts). */
  readonly #written = (): void => {
    if (--this.#writing > 0 || !this.#endWhenWritten) return;
    this.#endWhenWritten = false;
    if (this.#mode === 'relay') this.#finish(null);
  };

  /** Made at the first wait for the client's socket to drain (most answers never wait). */
  #onDrain: (() => void) | undefined;

  #abortUpstream(): void {
    const reason = Object.assign(new Error('Request aborted'), { code: 'UND_ERR_ABORTED' });
    if (this.#abort !== undefined) this.#abort(reason);
    else this.#reason = reason; // not yet on a connection: aborted when it gets one (onConnect)
  }

  #waitDrain(): void {
    this.#paused = true;
    if (this.#drainWait) return;
    this.#drainWait = true;
    this.#onDrain ??= () => {
      this.#drainWait = false;
      this.#resumeParser();
    };
    this.#res.once('drain', this.#onDrain);
  }

  #resumeParser(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  #finish(trailers: (Buffer | string)[] | null): void {
    // (A chunked answer's end writes its last chunk anyway: nothing to save there.)
    if (this.#writing > 0 && (trailers === null || trailers.length === 0) && !(this.#res as { chunkedEncoding?: boolean }).chunkedEncoding) {
      this.#endWhenWritten = true; // ended by #written
      return;
    }
    this.#mode = 'done';
    const res = this.#res;
    if (trailers !== null && trailers.length > 0) res.addTrailers(headersOf(trailers) as Record<string, string>);
    res.end();
    this.#done();
  }

  /** The body failed mid-way, or the client left: a cut response (a closed connection), never one that looks complete. */
  #cut(err: Error): void {
    this.#mode = 'done';
    if (this.#drainWait && this.#onDrain !== undefined) this.#res.off('drain', this.#onDrain);
    this.#drainWait = false;
    this.#onError?.(err);
    this.#res.destroy();
    this.#done();
  }

  #done(): Promise<void> {
    this.#mode = 'done';
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.();
    return Promise.resolve();
  }
}
