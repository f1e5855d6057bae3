// What the listener adds to Node's http.Server (servers[].engine: node) so that it behaves as the
// lean engine (h1-server.ts) does where a client would notice:
// - a pipelined request behind an answer in progress is not timed out as a slow head: the router
//   had not read it (Node's headers deadline runs from the head's first byte, even while the
//   router's pipelining pause keeps the rest of it unread); its deadline runs again, in full, once
//   the answers before it are done (heldHeadDeadline);
// - a request body still arriving when its answer is done is read and dropped, so the client's
//   leaving is seen at once (Node dumps it only when nothing had read it; a body the router began
//   to stream and then let go kept the socket's reads stopped until idleTimeoutMs) (dropUnreadBody);
// - an Upgrade: h2c request re-read as HTTP/1.1 waits for the answers in progress on its
//   connection: Node's queue of answers belongs to the connection's first parser, so one given to
//   a second parser while an answer was still writing was never sent (afterAnswers).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Node's http.Server field on a socket it serves: the answer writing now. */
interface NodeServed {
  _httpMessage?: ServerResponse | null;
}

/** Whether Node's server is writing an answer on `socket` now (then later requests wait for it). */
export function answering(socket: Socket): boolean {
  const res = (socket as NodeServed)._httpMessage;
  return res !== undefined && res !== null;
}

/**
 * Calls `go` once no answer is in progress on `socket` (at once when none is). Not at all if the
 * connection closes first, or if the last answer ended it (a `connection: close` one): what was
 * pipelined after that is never served (RFC 9112 9.6).
 */
export function afterAnswers(socket: Socket, go: () => void): void {
  if (socket.destroyed || socket.writableEnded) return;
  const res = (socket as NodeServed)._httpMessage;
  if (res === undefined || res === null) {
    go();
    return;
  }
  // Node's own 'finish' handler (it hands the socket to the next answer) was added first, so it has
  // run when this one does.
  const done = (): void => {
    res.off('finish', done);
    res.off('close', done);
    afterAnswers(socket, go);
  };
  res.on('finish', done);
  res.on('close', done);
}

/**
 * A headers deadline Node reported on a connection with an answer in progress: the head behind it
 * is the router's to read, not late. Once the answers before it are done the head gets the full
 * `ms` again; if no new request was read from the connection by then, `expired` runs (the 408 the
 * listener gives a slow head).
 */
export function heldHeadDeadline(socket: Socket, ms: number, expired: () => void): void {
  const before = (socket as Counted)[HEADS] ?? 0;
  afterAnswers(socket, () => {
    const timer = setTimeout(() => {
      socket.off('close', cancel);
      // A new head came in whole: Node's own deadline covers the next one.
      if (!socket.destroyed && ((socket as Counted)[HEADS] ?? 0) === before) expired();
    }, ms);
    timer.unref();
    const cancel = (): void => clearTimeout(timer);
    socket.once('close', cancel);
  });
}

/** Heads Node's server read whole on a socket (its 'request' events), for heldHeadDeadline. */
const HEADS = Symbol('hostmesh.node-engine.heads');
interface Counted {
  [HEADS]?: number;
}

/** A 'request' listener: counts the request's head on its socket. */
export function countHead(req: IncomingMessage): void {
  const socket = req.socket as Counted;
  socket[HEADS] = (socket[HEADS] ?? 0) + 1;
}

/**
 * Its answer is done and the request's body is not all read: the rest is read and dropped (Node's
 * _dump, which its server skips for a body something began to read), so the connection moves on to
 * the next request, or sees the client leave.
 */
export function dropUnreadBody(req: IncomingMessage): void {
  if (req.complete) return;
  (req as unknown as { _dump(): void })._dump();
  // A destroyed request's stream does not ask for more itself; Node's own pause for a backlog of
  // answers (its _paused) stays Node's to lift.
  const socket = req.socket as Socket & { _paused?: boolean };
  if (!socket.destroyed && socket._paused !== true && socket.isPaused()) socket.resume();
}
