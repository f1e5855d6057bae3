// Pipelined requests of one connection (HTTP/1.1 lets a client send many before the first is
// answered). Node's server parses them all at once and hands each over; its answers must leave
// in order anyway, so a listener routes one request of a connection at a time, the others wait
// here unrouted (nothing counted in flight, nothing sent). Past `max` waiting, the connection is
// no longer read (as a proxy should: the client's own buffers fill and it slows down); when the
// connection closes, what waits is dropped without being sent.

import type { ListenerEvents } from './events.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { parsingHeld } from './h1-server.js';

/** Default of a server's maxPipelinedRequests (README limits table). */
export const DEFAULT_MAX_PIPELINED_REQUESTS = 32;

/** pipelinePaused: a connection is no longer read, `max` requests of it wait; pipelineDropped: waiting requests of a closed connection dropped unsent. */
export type PipelineHooks = Partial<Pick<ListenerEvents, 'pipelinePaused' | 'pipelineDropped'>>;

interface Waiting {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly go: (req: IncomingMessage, res: ServerResponse) => void;
}

/** One connection's line: whether a request of it is being routed, and the ones waiting. */
interface Line {
  busy: boolean;
  paused: boolean;
  readonly waiting: Waiting[];
  /** The answer in progress; `done` (made once per connection) hears its 'finish' or 'close'. */
  current: ServerResponse | undefined;
  readonly done: () => void;
  /** What waits for the line to empty (an Upgrade or CONNECT pipelined behind its requests). */
  after?: (() => void)[] | undefined;
}

/** A socket's line, kept on the socket itself (a WeakMap lookup per request showed in profiles). */
const LINE = Symbol('hostmesh.pipeline');
interface Lined {
  [LINE]?: Line;
}

/** Set on a request whose turn came: the listener's second look at it routes it. */
const RELEASED = Symbol('hostmesh.pipeline-turn');
interface Released {
  [RELEASED]?: boolean;
}

/**
 * A server socket's handle (an internal field). Node's HTTP parser reads it directly, so a stream
 * pause() does not stop the parsing; stopping the handle's reads does, after the chunk in hand.
 */
interface HandledSocket {
  _handle?: { readStop(): number; readStart(): number } | null;
}

export class Pipelines {
  readonly #max: number;
  readonly #hooks: PipelineHooks;
  #waiting = 0;

  constructor(max: number = DEFAULT_MAX_PIPELINED_REQUESTS, hooks: PipelineHooks = {}) {
    this.#max = Math.max(1, max);
    this.#hooks = hooks;
  }

  /** Requests waiting for their turn now, on every connection. */
  get waiting(): number {
    return this.#waiting;
  }

  /**
   * Whether `req` must wait for its connection's earlier requests. If so, `go` is called when its
   * turn comes (the listener then sees it again, and this answers false), or never if the
   * connection closes first. A request not waiting is the one its connection is routing.
   */
  hold(req: IncomingMessage, res: ServerResponse, go: (req: IncomingMessage, res: ServerResponse) => void): boolean {
    if ((req as Released)[RELEASED] === true) {
      (req as Released)[RELEASED] = false;
      return false;
    }
    const socket = req.socket;
    let line = (socket as Lined)[LINE];
    if (line === undefined) {
      const created: Line = {
        busy: false,
        paused: false,
        waiting: [],
        current: undefined,
        done: () => {
          const res = created.current;
          if (res === undefined) return;
          created.current = undefined;
          res.off('finish', created.done);
          res.off('close', created.done);
          created.busy = false;
          this.#next(socket, created);
        },
      };
      line = created;
      (socket as Lined)[LINE] = created;
      socket.once('close', () => this.#drop(created));
    }
    if (!line.busy) {
      this.#run(line, res);
      return false;
    }
    line.waiting.push({ req, res, go });
    this.#waiting++;
    // Re-asserted on every request past the bound: Node resumes the socket after its own pauses.
    if (line.waiting.length >= this.#max) this.#pause(socket, line);
    return true;
  }

  /**
   * Calls `go` once no request of `socket`'s connection is routed or waiting (at once when none is):
   * an Upgrade or CONNECT pipelined behind requests is answered after them (RFC 9112 9.3.2: answers
   * in the order of the requests). Never if the connection closes first, or if an answer before it
   * ended the connection (RFC 9112 9.6: nothing after it is processed).
   */
  afterLine(socket: Socket, go: () => void): void {
    const line = (socket as Lined)[LINE];
    if (line === undefined || (!line.busy && line.waiting.length === 0)) {
      go();
      return;
    }
    (line.after ??= []).push(go);
  }

  /** `res` is its connection's request in progress: the next one goes when it is answered. */
  #run(line: Line, res: ServerResponse): void {
    line.busy = true;
    line.current = res;
    // on(), not once(): done() removes both itself, and once() would wrap each per request.
    res.on('finish', line.done);
    res.on('close', line.done);
  }

  #next(socket: Socket, line: Line): void {
    // An answer that closed the connection (its own `connection: close`, an HTTP/1.0 client's):
    // what was pipelined after it is never answered, so it is never routed either.
    if (socket.destroyed || socket.writableEnded) {
      this.#drop(line);
      return;
    }
    const w = line.waiting.shift();
    if (w === undefined) {
      this.#resume(socket, line);
      const after = line.after;
      if (after !== undefined) {
        line.after = undefined;
        for (const go of after) go();
      }
      return;
    }
    this.#waiting--;
    if (line.waiting.length < this.#max) this.#resume(socket, line);
    (w.req as Released)[RELEASED] = true;
    this.#run(line, w.res);
    w.go(w.req, w.res);
  }

  #pause(socket: Socket, line: Line): void {
    if (line.paused) return;
    line.paused = true;
    this.#hooks.pipelinePaused?.();
    // The rest of the chunk being parsed still arrives (one read: up to 64 KB of requests); the
    // handle's reading flag is left set, so Node's own resume (after its back-pressure pause)
    // does not start it again: only #resume does.
    (socket as HandledSocket)._handle?.readStop();
  }

  #resume(socket: Socket, line: Line): void {
    if (!line.paused) return;
    line.paused = false;
    // Not while the lean engine holds bytes it has not parsed: it reads again itself once it has.
    if (!socket.destroyed && !parsingHeld(socket)) (socket as HandledSocket)._handle?.readStart();
  }

  /** The connection closed: its waiting requests are dropped, never sent. */
  #drop(line: Line): void {
    line.after = undefined;
    const n = line.waiting.length;
    if (n === 0) return;
    line.waiting.length = 0;
    this.#waiting -= n;
    this.#hooks.pipelineDropped?.(n);
  }
}
