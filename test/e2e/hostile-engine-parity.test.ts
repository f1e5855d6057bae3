// Where the two listener engines (servers[].engine: 'node', Node's http.Server; 'lean', raw sockets
// and llhttp) once behaved differently in a way a client would notice, each case on both engines
// over raw sockets, as the lean engine behaves (and the RFCs ask):
// - a pipelined request the router holds (behind the one it is answering, its reads paused at
//   maxPipelinedRequests) is answered in order, never timed out as a slow head: the router had not
//   read it (RFC 9112 9.3.2: a server may not have read a pipelined request yet; the client did
//   nothing wrong);
// - a client that leaves while its request body is still arriving is noticed at once: the upstream
//   attempt is cut and the connection freed, not held until idleTimeoutMs;
// - Upgrade: h2c pipelined behind a request still being answered (an HTTP/1.0 keep-alive one, or an
//   HTTP/1.1 one) is ignored and the request answered over HTTP/1.1, after the earlier answer
//   (RFC 7540 3.2: a server that does not switch answers as HTTP/1.1; RFC 9113 3.1 deprecates h2c).
// No timed assertions: every wait is a positive event with a ceiling far below the deadline that
// would otherwise end it (idleTimeoutMs is 300 s here).

import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { engineCounter, enginesUnderTest, type EngineRouters, readAnswers, type ServerEngine, startEngineRouters, unread } from '../helpers/server-engines.js';
import { eventually } from '../helpers/sockets.js';

t.setTimeout(60_000);

const IP = '127.0.0.1';
const ENGINES = enginesUnderTest();
const HEADERS_TIMEOUT_MS = 300;

// The backend: requests to /gate wait until the test opens the gate; /hold never reads its body and
// never answers; everything else is answered at once.
const seen: string[] = [];
const gated: (() => void)[] = [];
let open = 0;
let cut = 0;
const openGate = (): void => {
  for (const go of gated.splice(0)) go();
};
const backend = http.createServer((req, res) => {
  const url = req.url ?? '';
  seen.push(url);
  open++;
  let ended = false;
  req.on('end', () => (ended = true));
  res.on('close', () => {
    open--;
    if (!ended) cut++;
  });
  if (url.startsWith('/hold')) return; // body unread, no answer: only the client's leaving ends it
  req.resume();
  const answer = (): void => {
    const text = `ok ${url}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (url.startsWith('/gate')) gated.push(answer);
  else answer();
});
// Upgrades: a 101, then an echo.
const upgraded = new Set<net.Socket>();
backend.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  seen.push(req.url ?? '');
  upgraded.add(socket);
  socket.on('close', () => upgraded.delete(socket));
  socket.on('error', () => undefined);
  socket.on('end', () => socket.end());
  socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n');
  if (head.length > 0) socket.write(head);
  socket.on('data', (d: Buffer) => socket.write(d));
});
await new Promise<void>((r) => backend.listen(0, IP, r));
t.teardown(() => {
  openGate();
  for (const u of upgraded) u.destroy();
  backend.closeAllConnections();
  return new Promise<void>((r) => backend.close(() => r()));
});
const backendPort = (backend.address() as net.AddressInfo).port;

// A backend that answers as soon as a request's head is in, then closes without reading the body.
const early = net.createServer((s) => {
  s.on('error', () => undefined);
  let buf = '';
  const onData = (d: Buffer): void => {
    buf += d.toString('latin1');
    if (!buf.includes('\r\n\r\n')) return;
    s.off('data', onData);
    s.end('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntoo large');
    setImmediate(() => s.destroy());
  };
  s.on('data', onData);
});
await new Promise<void>((r) => early.listen(0, IP, r));
t.teardown(() => new Promise<void>((r) => early.close(() => r())));
const earlyPort = (early.address() as net.AddressInfo).port;

/** A short headers deadline, one request waiting at most, the default (300 s) idle deadline. */
const routers: EngineRouters = await startEngineRouters(
  IP,
  backendPort,
  { headersTimeoutMs: HEADERS_TIMEOUT_MS, maxPipelinedRequests: 1 },
  ENGINES,
  `/svc => /$/inet/${IP}/${backendPort}; /svc/early => /$/inet/${IP}/${earlyPort};`,
);
t.teardown(() => routers.close());

interface Raw {
  readonly socket: net.Socket;
  text(): string;
  closed(): boolean;
}

async function connect(engine: ServerEngine): Promise<Raw> {
  const socket = net.connect({ host: IP, port: routers.port(engine) });
  socket.setNoDelay(true);
  let text = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, text: () => text, closed: () => closed };
}

/** Whether nothing `c` sent waits unread in the router's receive queue. */
function probeRead(c: Raw): boolean {
  const address = c.socket.address() as net.AddressInfo;
  return unread(IP, c.socket.remotePort as number, address.port) === 0;
}

/** A counter of the engine's router, summed over the label values not given. */
function counter(engine: ServerEngine, name = 'hostmesh_connection_deadlines_total', labels: Record<string, string> = { state: 'headers' }): number {
  return engineCounter(routers, engine, name, labels);
}

/** Nothing of the case is left: no socket open on the router, nothing in flight, nothing at the backend. */
async function settledBack(t: Test, engine: ServerEngine): Promise<void> {
  const ok = await eventually(() => routers.connections(engine) === 0 && routers.inFlight(engine) === 0 && open === 0, 10_000);
  t.ok(ok, `${engine}: nothing left open (${routers.connections(engine)} sockets, ${routers.inFlight(engine)} in flight, ${open} at the backend)`);
}

for (const engine of ENGINES) {
  t.test(`[${engine}] a pipelined request held behind a slow answer past headersTimeoutMs is answered in order, not timed out`, async (t) => {
    const c = await connect(engine);
    // /gate is routed and held; /p1 waits (maxPipelinedRequests 1: reading pauses); /p2's head is
    // cut in two, its rest in a second write the router has not read while it is paused.
    c.socket.write(`GET /gate-${engine} HTTP/1.1\r\nHost: world\r\n\r\nGET /p1 HTTP/1.1\r\nHost: world\r\n\r\nGET /p2 HTTP/1.1\r\nHo`);
    t.ok(await eventually(() => gated.length === 1, 10_000), 'the first request reached the backend and waits there');
    c.socket.write('st: world\r\n\r\n');
    // A connection opened now, sending nothing, is closed at headersTimeoutMs: once it is, the cut
    // head (begun before it) has been waiting longer than that too.
    const probe = await connect(engine);
    t.ok(await eventually(() => probe.closed(), 20_000), "the router's headers deadline has passed (an idle connection opened after the cut head was closed)");
    t.match(probe.text(), /^(HTTP\/1\.1 408 [^]*)?$/, 'that one with a 408 or nothing');
    openGate();
    t.ok(await eventually(() => c.text().includes('ok /p2') || c.closed(), 10_000), 'the pipelined requests were answered (or the connection closed)');
    const read = readAnswers(Buffer.from(c.text(), 'latin1'), ['GET', 'GET', 'GET']);
    t.same(
      read.answers.map((a) => `${a.status} ${a.body.toString('latin1')}`),
      [`200 ok /gate-${engine}`, '200 ok /p1', '200 ok /p2'],
      `all three answered, in order, no 408 (${JSON.stringify(c.text().slice(0, 400))})`,
    );
    t.equal(c.closed(), false, 'the connection stays open');
    c.socket.destroy();
    await settledBack(t, engine);
  });

  t.test(`[${engine}] a pipelined head that never finishes is still closed at headersTimeoutMs once the answers before it are out`, async (t) => {
    const before = counter(engine);
    const c = await connect(engine);
    c.socket.write(`GET /gate-slow-${engine} HTTP/1.1\r\nHost: world\r\n\r\nGET /p1 HTTP/1.1\r\nHost: world\r\n\r\nGET /never HTTP/1.1\r\nHo`);
    t.ok(await eventually(() => gated.length === 1, 10_000), 'the first request reached the backend and waits there');
    const probe = await connect(engine);
    t.ok(await eventually(() => probe.closed(), 20_000), "the router's headers deadline has passed (an idle connection opened after the cut head was closed)");
    openGate();
    t.ok(await eventually(() => c.closed(), 20_000), 'the connection was closed by the router (long before idleTimeoutMs, 300 s)');
    const text = c.text();
    t.match(
      text,
      new RegExp(`^HTTP/1\\.1 200 [^]*ok /gate-slow-${engine}HTTP/1\\.1 200 [^]*ok /p1(HTTP/1\\.1 408 [^]*)?$`),
      `both answers, then a 408 or nothing (${JSON.stringify(text.slice(-120))})`,
    );
    t.notOk(seen.includes('/never'), 'the unfinished head reached no backend');
    t.ok(counter(engine) >= before + 2, 'both headers deadlines are counted');
    c.socket.destroy();
    await settledBack(t, engine);
  });

  t.test(`[${engine}] a client that leaves mid-upload: the upstream attempt is cut and the connection freed at once`, async (t) => {
    const cutBefore = cut;
    const c = await connect(engine);
    const target = `/gate-upload-${engine}`;
    c.socket.write(`POST ${target} HTTP/1.1\r\nHost: world\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    c.socket.write(Buffer.alloc(256 * 1024, 120));
    t.ok(await eventually(() => seen.includes(target), 10_000), 'the request reached the backend while its body was arriving');
    c.socket.destroy();
    t.ok(
      await eventually(() => cut > cutBefore && routers.connections(engine) === 0 && routers.inFlight(engine) === 0, 20_000),
      `the backend saw the request cut and the router freed the connection, long before idleTimeoutMs (300 s) (${routers.connections(engine)} open, ${routers.inFlight(engine)} in flight)`,
    );
    gated.length = 0; // the held answer went with the client
    await settledBack(t, engine);
  });

  t.test(`[${engine}] a client that leaves mid-upload after the backend answered early: the connection is freed at once`, async (t) => {
    const c = await connect(engine);
    c.socket.write(`POST /upload HTTP/1.1\r\nHost: early\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    c.socket.write(Buffer.alloc(1024 * 1024, 120));
    t.ok(await eventually(() => /\r\n\r\n/.test(c.text()) || c.closed(), 10_000), 'the early answer (or a close) came back');
    t.match(c.text(), /^(HTTP\/1\.1 (413|5\d\d) [^]*)?$/, `the early answer, an error, or a close (${JSON.stringify(c.text().slice(0, 40))})`);
    c.socket.destroy();
    t.ok(
      await eventually(() => routers.connections(engine) === 0 && routers.inFlight(engine) === 0, 20_000),
      `the router freed the connection, long before idleTimeoutMs (300 s) (${routers.connections(engine)} open, ${routers.inFlight(engine)} in flight)`,
    );
    await settledBack(t, engine);
  });

  for (const [version, first] of [
    ['1.0', `POST /first-10 HTTP/1.0\r\nHost: world\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n\u0003`],
    ['1.1', `GET /gate-first-11 HTTP/1.1\r\nHost: world\r\n\r\n`],
  ] as const) {
    t.test(`[${engine}] Upgrade: h2c pipelined behind an HTTP/${version} request still being answered is served over HTTP/1.1, in order`, async (t) => {
      const opened = counter(engine, 'hostmesh_connections_total', { side: 'server' });
      const closed = counter(engine, 'hostmesh_connections_closed_total', { side: 'server' });
      const c = await connect(engine);
      const h2c =
        'PATCH /after-h2c HTTP/1.1\r\nHost: world\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n';
      c.socket.write(first + h2c);
      const firstTarget = /^\S+ (\S+)/.exec(first)?.[1] as string;
      t.ok(await eventually(() => seen.includes(firstTarget), 10_000), 'the first request reached the backend');
      // Both came in one read: the upgrade was parsed while the first answer was in progress (the
      // HTTP/1.1 one waits at the gate until now).
      openGate();
      t.ok(await eventually(() => c.text().includes('ok /after-h2c') || c.closed(), 10_000), 'the h2c request was answered');
      const read = readAnswers(Buffer.from(c.text(), 'latin1'), [/^(\S+)/.exec(first)?.[1] as string, 'PATCH']);
      t.same(
        read.answers.map((a) => `${a.status} ${a.body.toString('latin1')}`),
        [`200 ok ${firstTarget}`, '200 ok /after-h2c'],
        `both answered over HTTP/1.1, in order (${JSON.stringify(c.text().slice(0, 300))})`,
      );
      t.notMatch(c.text(), /HTTP\/1\.1 101/, 'no switch');
      t.equal(seen.filter((s) => s === '/after-h2c').length, 1, 'the h2c request reached the backend once');
      t.equal(c.closed(), false, 'the connection serves on');
      seen.length = 0;
      c.socket.destroy();
      await settledBack(t, engine);
      t.equal(
        counter(engine, 'hostmesh_connections_total', { side: 'server' }) - opened,
        1,
        'one connection opened is counted (the h2c request re-read on it is no second one)',
      );
      t.equal(counter(engine, 'hostmesh_connections_closed_total', { side: 'server' }) - closed, 1, 'and one closed');
    });
  }
  for (const kind of ['Upgrade: websocket', 'CONNECT'] as const) {
    t.test(`[${engine}] ${kind} pipelined behind a request still being answered: its answer and the tunnel come after that answer`, async (t) => {
      const c = await connect(engine);
      const tunnel =
        kind === 'CONNECT'
          ? 'CONNECT world:80 HTTP/1.1\r\nHost: world:80\r\n\r\n'
          : 'GET /ws HTTP/1.1\r\nHost: world\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly-bytes';
      c.socket.write(`GET /gate-before-tunnel HTTP/1.1\r\nHost: world\r\n\r\n${tunnel}`);
      t.ok(await eventually(() => seen.includes('/gate-before-tunnel'), 10_000), 'the first request reached the backend and waits there');
      // A request the router had sent on at once would reach the backend (or answer) meanwhile: the
      // first one's answer is what the tunnel waits for, so nothing of it may be out yet.
      const probe = await connect(engine);
      probe.socket.write('GET /probe HTTP/1.1\r\nHost: world\r\n\r\n');
      t.ok(await eventually(() => probe.text().includes('ok /probe'), 10_000), 'another connection is served meanwhile');
      probe.socket.destroy();
      t.equal(c.text(), '', `nothing is written before the first answer (${JSON.stringify(c.text().slice(0, 80))})`);
      // The client does not wait for the tunnel's answer: what it sends now must not be lost.
      c.socket.write(kind === 'CONNECT' ? 'GET /inside HTTP/1.1\r\nHost: world\r\n\r\n' : 'late-bytes');
      t.ok(await eventually(() => probeRead(c), 10_000), 'the router read them (its receive queue is empty)');
      openGate();
      t.ok(
        await eventually(
          () => /^HTTP\/1\.1 200 [^]*ok \/gate-before-tunnel/.test(c.text()) && /\r\n\r\n/.test(c.text().slice(c.text().indexOf('ok /gate-before-tunnel'))),
          10_000,
        ),
        'both answers came',
      );
      const at = c.text().indexOf('ok /gate-before-tunnel') + 'ok /gate-before-tunnel'.length;
      t.match(c.text().slice(0, at), /^HTTP\/1\.1 200 [^]*ok \/gate-before-tunnel$/, 'the first answer first, whole');
      t.match(c.text().slice(at), kind === 'CONNECT' ? /^HTTP\/1\.1 200 / : /^HTTP\/1\.1 101 /, "then the tunnel's answer");
      if (kind === 'CONNECT') {
        t.ok(await eventually(() => c.text().includes('ok /inside'), 10_000), 'a request sent into the tunnel before its answer is routed');
      } else {
        t.ok(
          await eventually(() => c.text().includes('early-byteslate-bytes'), 10_000),
          `bytes sent with the upgrade request and before its answer went through the tunnel, in order (${JSON.stringify(c.text().slice(-40))})`,
        );
      }
      seen.length = 0;
      c.socket.destroy();
      t.ok(await eventually(() => upgraded.size === 0, 10_000), "the tunnel's backend side is closed too");
      await settledBack(t, engine);
    });
  }
  t.test(`[${engine}] an Upgrade refused (two Host fields) pipelined behind a request still being answered: the refusal comes after that answer`, async (t) => {
    const c = await connect(engine);
    c.socket.write(
      'GET /gate-before-refusal HTTP/1.1\r\nHost: world\r\n\r\nGET /ws HTTP/1.1\r\nHost: world\r\nHost: other\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    t.ok(await eventually(() => seen.includes('/gate-before-refusal'), 10_000), 'the first request reached the backend and waits there');
    const probe = await connect(engine);
    probe.socket.write('GET /probe HTTP/1.1\r\nHost: world\r\n\r\n');
    t.ok(await eventually(() => probe.text().includes('ok /probe'), 10_000), 'another connection is served meanwhile');
    probe.socket.destroy();
    t.equal(c.text(), '', `nothing is written before the first answer (${JSON.stringify(c.text().slice(0, 80))})`);
    openGate();
    t.ok(await eventually(() => c.closed(), 10_000), 'the connection is closed after the refusal');
    t.match(
      c.text(),
      /^HTTP\/1\.1 200 [^]*ok \/gate-before-refusalHTTP\/1\.1 400 [^]*\r\nl5d-err: /i,
      `the first answer, then the 400 with l5d-err (${JSON.stringify(c.text().slice(0, 60))})`,
    );
    t.notOk(seen.includes('/ws'), 'the refused upgrade reached no backend');
    seen.length = 0;
    await settledBack(t, engine);
  });
}
