// A listener's direction is the config's, never inferred from TLS: plaintext inbound listeners
// refuse CONNECT and mark undelivered answers for requeue; outbound ones serve CONNECT. Alone and via hostmesh.

import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import type { HostmeshConfig, ServerConfig } from '../../src/config/types.js';
import { HostmeshError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { type Direction, type RequestContext, serverDirection } from '../../src/router/context.js';
import type { Router } from '../../src/router/router.js';
import { type Hostmesh, startHostmesh } from '../../src/app/hostmesh.js';
import { Listener } from '../../src/server/listener.js';
import { request } from '../helpers/http.js';
import { listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { testRouter } from '../helpers/router-config.js';
import { collect } from '../helpers/sockets.js';

const HOST = '127.0.0.1';

t.test('serverDirection: the direction key, else the label, else TLS', async (t) => {
  const tls = { certPath: 'c', keyPath: 'k' } as unknown as ServerConfig['tls'];
  const cases: [Partial<ServerConfig>, string, Direction][] = [
    [{}, 'outgoing', 'outbound'],
    [{}, 'incoming', 'inbound'],
    [{ tls }, 'outgoing', 'outbound'],
    [{}, 'edge', 'outbound'],
    [{ tls }, 'edge', 'inbound'],
    [{ direction: 'outbound' }, 'incoming', 'outbound'],
    [{ direction: 'inbound' }, 'outgoing', 'inbound'],
    [{ direction: 'outbound', tls }, 'edge', 'outbound'],
  ];
  for (const [s, label, want] of cases) {
    t.equal(serverDirection({ ip: HOST, port: 1, ...s } as ServerConfig, label), want, `${JSON.stringify(Object.keys(s))} label ${label}`);
  }
});

/** A router that answers with the direction its context came with; /hold/* waits for `release(url)`. */
function echoRouter(): { router: Router; release: (url?: string) => void; holding: (url: string) => Promise<void> } {
  const held = new Map<string, { started: Promise<void>; start: () => void; done: Promise<void>; finish: () => void }>();
  const entry = (url: string) => {
    let e = held.get(url);
    if (e === undefined) {
      let start = (): void => undefined;
      let finish = (): void => undefined;
      const started = new Promise<void>((r) => (start = r));
      const done = new Promise<void>((r) => (finish = r));
      e = { started, start, done, finish };
      held.set(url, e);
    }
    return e;
  };
  const router = {
    label: 'echo',
    tlsOptions: undefined,
    explainFailure: (err: unknown) => err,
    handle: async (req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext) => {
      if (req.url?.startsWith('/hold/') === true) {
        const e = entry(req.url);
        e.start();
        await e.done;
      }
      res.end(`direction=${ctx.direction}\n`);
    },
  } as unknown as Router;
  const release = (url?: string): void => {
    if (url !== undefined) entry(url).finish();
    else for (const e of held.values()) e.finish();
  };
  return { router, release, holding: (url) => entry(url).started };
}

async function plainListener(
  t: { teardown(fn: () => unknown): void },
  direction: Direction,
): Promise<{ listener: Listener } & Omit<ReturnType<typeof echoRouter>, 'router'>> {
  const { router, release, holding } = echoRouter();
  const listener = await new Listener(router, { direction, ip: HOST, port: 0 }, silentLogger()).start();
  t.teardown(() => {
    release();
    return listener.close(0);
  });
  return { listener, release, holding };
}

t.test('a plaintext inbound listener hands the router its direction and refuses CONNECT (CONNECT_REFUSED)', async (t) => {
  const { listener } = await plainListener(t, 'inbound');
  const r = await request({ host: HOST, port: listener.address.port, path: '/', headers: { host: 'web' } });
  t.equal(r.body, 'direction=inbound\n', 'inbound although it has no TLS');
  const s = net.connect(listener.address.port, HOST, () => s.write('CONNECT web:80 HTTP/1.1\r\nHost: web:80\r\n\r\n'));
  const out = await collect(s);
  t.match(out, /^HTTP\/1\.1 403 Forbidden\r\n/);
  const message = HostmeshError.of('CONNECT_REFUSED', 'incoming').message;
  t.match(out, `\r\nl5d-err: ${encodeURIComponent(message)}\r\n`);
  t.match(out, `\r\n\r\n${message}\n`);

  const { listener: out2 } = await plainListener(t, 'outbound');
  t.equal((await request({ host: HOST, port: out2.address.port, path: '/', headers: { host: 'web' } })).body, 'direction=outbound\n');
});

/**
 * The answer to a request that reaches a draining listener: connection A keeps the drain waiting;
 * on connection B a request sent after the drain began is read once B's held request is answered.
 */
async function drainingAnswer(t: { teardown(fn: () => unknown): void }, direction: Direction): Promise<{ inFlight: string[]; late: string }> {
  const { listener, release, holding } = await plainListener(t, direction);
  const open = (url: string): { s: net.Socket; out: Promise<string> } => {
    const s = net.connect(listener.address.port, HOST, () => s.write(`GET ${url} HTTP/1.1\r\nHost: web\r\n\r\n`));
    return { s, out: collect(s) };
  };
  const a = open('/hold/a');
  const b = open('/hold/b');
  await Promise.all([holding('/hold/a'), holding('/hold/b')]);
  const closed = listener.close(5_000);
  b.s.write('GET /late HTTP/1.1\r\nHost: web\r\n\r\n');
  release('/hold/b');
  const answers = (await b.out).split(/(?=HTTP\/1\.1 \d{3} )/);
  release('/hold/a');
  await closed;
  return { inFlight: [await a.out, answers[0] ?? ''], late: answers[1] ?? '' };
}

t.test("a plaintext inbound listener's draining 503 carries the requeue mark; an outbound one's does not", async (t) => {
  const { inFlight, late: inbound } = await drainingAnswer(t, 'inbound');
  for (const answer of inFlight) t.match(answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*direction=inbound\n$/, 'the requests in flight finished');
  t.match(inbound, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  t.match(inbound, /\r\nl5d-hostmesh-requeue: not-delivered\r\n/i, 'a peer router may resend it to another node');
  t.match(inbound, /\r\nl5d-retryable: true\r\n/i);
  t.match(inbound, /\r\nl5d-err: router%20is%20shutting%20down\r\n/);
  t.match(inbound, /\r\nconnection: close\r\n/i);

  const { late: outbound } = await drainingAnswer(t, 'outbound');
  t.match(outbound, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
  t.notMatch(outbound, /l5d-hostmesh-requeue/i, "a pod's answer carries no router mark");
  t.match(outbound, /\r\nl5d-retryable: true\r\n/i);
});

/** CONNECT `authority` through `port`, then (if established) a GET inside the tunnel: the whole exchange. */
function connectThrough(port: number, authority: string): Promise<string> {
  const s = net.connect(port, HOST, () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
  let sentInner = false;
  s.on('data', (c: Buffer) => {
    if (!sentInner && c.toString('latin1').startsWith('HTTP/1.1 200 Connection Established')) {
      sentInner = true;
      s.write('GET /inside HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n');
    }
  });
  return collect(s);
}

t.test("through hostmesh's config: the label makes a plaintext router inbound, servers[].direction wins", async (t) => {
  const app = http.createServer((req, res) => res.end(`app saw ${req.url}\n`));
  await listen(app, HOST);
  t.teardown(() => new Promise((r) => app.close(r)));
  const appPort = (app.address() as { port: number }).port;
  const [incoming, incomingAsOutbound, outgoingAsInbound, edge, admin] = (await freePorts(HOST, 5)) as [number, number, number, number, number];
  const dtab = `/svc/web=>/$/inet/${HOST}/${appPort};/svc/empty=>/$/nil;`;
  const config: HostmeshConfig = {
    admin: { ip: HOST, port: admin, allowRemoteShutdown: false },
    namers: [],
    routers: [
      testRouter('incoming', HOST, incoming, dtab, {
        servers: [
          { ip: HOST, port: incoming },
          { ip: HOST, port: incomingAsOutbound, direction: 'outbound' },
        ],
      }),
      testRouter('outgoing', HOST, outgoingAsInbound, dtab, { servers: [{ ip: HOST, port: outgoingAsInbound, direction: 'inbound' }] }),
      testRouter('edge', HOST, edge, dtab),
    ],
    shutdownGraceMs: 100,
    baseDir: process.cwd(),
  };
  const mesh: Hostmesh = await startHostmesh(config, { logger: silentLogger() });
  t.teardown(() => mesh.close(100));

  const refusedConnect = /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*l5d-err: CONNECT%20is%20not%20accepted%20here/;
  t.match(await connectThrough(incoming, 'web:80'), refusedConnect, "label 'incoming' without TLS: inbound, CONNECT refused");
  t.match(await connectThrough(outgoingAsInbound, 'web:80'), refusedConnect, "direction: inbound beats the label 'outgoing'");
  const served = /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*app saw \/inside\n$/;
  t.match(await connectThrough(incomingAsOutbound, 'web:80'), served, "direction: outbound beats the label 'incoming': CONNECT tunnels to the app");
  t.match(await connectThrough(edge, 'web:80'), served, 'another label without TLS: outbound');

  // The inbound side marks an answer no app received so the peer may requeue it; the outbound side does not.
  const noEndpoint = (port: number) => request({ host: HOST, port, path: '/', headers: { host: 'empty' } });
  const inboundMiss = await noEndpoint(incoming);
  t.equal(inboundMiss.status, 502);
  t.equal(inboundMiss.headers['l5d-hostmesh-requeue'], 'no-local-endpoint');
  t.equal((await noEndpoint(outgoingAsInbound)).headers['l5d-hostmesh-requeue'], 'no-local-endpoint');
  const outboundMiss = await noEndpoint(incomingAsOutbound);
  t.equal(outboundMiss.status, 502);
  t.notOk('l5d-hostmesh-requeue' in outboundMiss.headers, 'same router, outbound server: no mark');
  t.notOk('l5d-hostmesh-requeue' in (await noEndpoint(edge)).headers);
  for (const port of [incoming, incomingAsOutbound, outgoingAsInbound, edge]) {
    const ok = await request({ host: HOST, port, path: '/x', headers: { host: 'web' } });
    t.equal(ok.body, 'app saw /x\n', `port ${port} routes plain requests either way`);
  }
});
