// The listener's own error answers, with a stub router: a router error goes through rescue with the
// router's explanation, and a CONNECT during a drain gets the 503 SHUTTING_DOWN a request gets.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import dc from 'node:diagnostics_channel';
import net from 'node:net';
import t from 'tap';
import { ERRORS, HostmeshError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { Router } from '../../src/router/router.js';
import { Listener } from '../../src/server/listener.js';
import { unread } from '../helpers/server-engines.js';
import { collect, eventually } from '../helpers/sockets.js';

const HOST = '127.0.0.1';

/** A router whose requests wait until `release` is called; /fail fails with NO_ROUTE at once. */
function stubRouter(): { router: Router; release: () => void; started: Promise<void> } {
  let release = (): void => undefined;
  let started = (): void => undefined;
  const startedP = new Promise<void>((r) => (started = r));
  const held = new Promise<void>((r) => (release = r));
  const router = {
    label: 'stub',
    tlsOptions: undefined,
    explainFailure: (err: unknown) => (err instanceof HostmeshError ? new HostmeshError(err.code, err.message, { detail: 'delegation path:\n  (stub)' }) : err),
    handle: async (req: { url?: string }, res: { end: (s: string) => void }) => {
      if (req.url === '/fail') throw HostmeshError.of('NO_ROUTE', 'neg', { service: '/svc/x' });
      started();
      await held;
      res.end('late\n');
    },
  } as unknown as Router;
  return { router, release, started: startedP };
}

t.test("a router error is answered through rescue with the router's explanation", async (t) => {
  const { router } = stubRouter();
  const listener = await new Listener(router, { direction: 'outbound', ip: HOST, port: 0 }, silentLogger()).start();
  t.teardown(() => listener.close(0));
  const s = net.connect(listener.address.port, HOST, () => s.write('GET /fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
  const out = await collect(s);
  t.match(out, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  t.match(out, /\r\nl5d-err: no%20route%20to%20%2Fsvc%2Fx%3A%20the%20name%20does%20not%20bind%20\(neg\)\r\n/);
  t.match(out, /\r\n\r\nno route to \/svc\/x: the name does not bind \(neg\)\ndelegation path:\n {2}\(stub\)\n$/, 'the detail the router added is in the body');
});

/** Starts a listener with one request in flight on `busy`, begins its drain, and returns both. */
async function draining(): Promise<{ busy: net.Socket; port: number; out: Promise<string>; release: () => void; closed: Promise<void> }> {
  const { router, release, started } = stubRouter();
  const listener = await new Listener(router, { direction: 'outbound', ip: HOST, port: 0 }, silentLogger()).start();
  // The connection holds a request in flight, so the drain waits for it (new connections are not accepted).
  const busy = net.connect(listener.address.port, HOST, () => busy.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'));
  const out = collect(busy);
  await started;
  return { busy, port: listener.address.port, out, release, closed: listener.close(5000) };
}

/** The answers in a connection's bytes, split at each status line. */
const answers = (out: string): string[] => out.split(/(?=HTTP\/1\.1 \d{3} )/);

t.test('while draining, a CONNECT gets SHUTTING_DOWN like a request (it was a 403 with no body)', async (t) => {
  const d = await draining();
  d.busy.write('CONNECT world:80 HTTP/1.1\r\nHost: world:80\r\n\r\n');
  // Pipelined behind the request in flight, it is answered after that one (RFC 9112 9.3.2). Released
  // once the listener has read it (sent and not waiting in its receive queue): a CONNECT arriving
  // after the last answer would find the connection closed by the drain.
  t.ok(await eventually(() => d.busy.writableLength === 0 && unread(HOST, d.port, d.busy.localPort as number) === 0, 10_000), 'the listener read the CONNECT');
  d.release();
  const [first = '', viaRaw = ''] = answers(await d.out);
  await d.closed;
  t.match(first, /^HTTP\/1\.1 200 [^]*\r\n\r\nlate\n$/, `the request in flight is answered first (${JSON.stringify(first)})`);
  t.equal(
    viaRaw,
    `HTTP/1.1 ${ERRORS.SHUTTING_DOWN.status} Service Unavailable\r\nl5d-err: router%20is%20shutting%20down\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      'content-length: 24\r\nconnection: close\r\n\r\nrouter is shutting down\n',
  );
});

t.test('a draining mTLS listener marks its 503 not-delivered, so the peer router resends it elsewhere', async (t) => {
  const { createCa, issueNodeCertificate } = await import('../../src/tls/generate.js');
  const tls = await import('node:tls');
  const ca = createCa({ commonName: 'test CA', days: 1 });
  const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-b', ip: HOST }, 1);
  const peer = issueNodeCertificate(ca, 'hostmesh', { name: 'node-a' }, 1);
  const { router, release, started } = stubRouter();
  const listener = await new Listener(
    router,
    { direction: 'inbound', ip: HOST, port: 0, tls: { cert: node.certPem, key: node.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true } },
    silentLogger(),
  ).start();
  // The listener's own TCP socket of each connection it accepts, by the client's port: its
  // bytesRead tells when the listener has read what that client sent.
  const accepted = new Map<number, net.Socket>();
  const onAccepted = (message: unknown): void => {
    const socket = (message as { socket: net.Socket }).socket;
    if (socket.remotePort !== undefined) accepted.set(socket.remotePort, socket);
  };
  dc.subscribe('net.server.socket', onAccepted);
  t.teardown(() => dc.unsubscribe('net.server.socket', onAccepted));
  const connect = async (): Promise<{ s: import('node:tls').TLSSocket; server: net.Socket }> => {
    const s = tls.connect({ host: HOST, port: listener.address.port, ca: ca.certPem, cert: peer.certPem, key: peer.keyPem, servername: 'hostmesh' });
    // 'session' (a TLS 1.3 ticket) comes once the listener has the client's Finished: its side of
    // the handshake is done too, so the connection is no longer one a drain drops as unfinished.
    await Promise.all([new Promise<void>((r) => s.once('secureConnect', () => r())), new Promise<void>((r) => s.once('session', () => r()))]);
    // Out of the 'session' callback's turn first: Node 20 loses a write made within it.
    await new Promise((r) => setImmediate(r));
    return { s, server: accepted.get(s.localPort as number) as net.Socket };
  };
  // One request in flight holds the drain open; a second connection is mid-request when it starts.
  const { s: busy } = await connect();
  const busyOut = collect(busy as unknown as net.Socket);
  busy.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await started;
  const { s: late, server: lateServer } = await connect();
  t.ok(lateServer, "the listener's side of the second connection is known");
  const lateOut = collect(late as unknown as net.Socket);
  const handshaken = lateServer.bytesRead;
  late.write('GET /next HTTP/1.1\r\nHost: x\r\n');
  // The drain starts once the listener has read the unfinished head (its parser has a request
  // begun, so the connection is not idle): waited for, not slept for (50 ms was too short when busy).
  t.ok(await eventually(() => lateServer.bytesRead > handshaken, 30_000), 'the listener read the start of the second request');
  await new Promise((r) => setImmediate(r));
  const closed = listener.close(5000);
  late.write('\r\n');
  const answer = await lateOut;
  release();
  await busyOut;
  await closed;
  t.match(answer, /^HTTP\/1\.1 503 /, 'a request completed during the drain is refused');
  t.match(answer, /\r\nl5d-hostmesh-requeue: not-delivered\r\n/i, 'marked for the peer router to requeue');
  t.match(answer, /\r\nl5d-retryable: true\r\n/i);
});

t.test('on both engines: two Host fields are a 400 and close the connection; HTTP/2.0 on an HTTP/1 port is a 505; neither is routed', async (t) => {
  for (const engine of ['node', 'lean'] as const) {
    let routed = 0;
    const router = {
      label: 'stub',
      explainFailure: (err: unknown) => err,
      handle: async (_req: unknown, res: { end: (s: string) => void }) => {
        routed++;
        res.end('routed\n');
      },
    } as unknown as Router;
    const listener = await new Listener(router, { direction: 'outbound', ip: HOST, port: 0, engine }, silentLogger()).start();
    t.teardown(() => listener.close(0));
    const ask = (bytes: string): Promise<string> => {
      const s = net.connect(listener.address.port, HOST, () => s.write(bytes));
      return collect(s);
    };
    // Node's parser keeps the first Host and drops the second: a server behind the router could read the other.
    const two = await ask('GET / HTTP/1.1\r\nHost: world\r\nHost: elsewhere\r\n\r\nGET /after HTTP/1.1\r\nHost: world\r\n\r\n');
    t.match(two, /^HTTP\/1\.1 400 Bad Request\r\n/, `${engine}: 400`);
    t.match(two, /\r\nl5d-err: more%20than%20one%20Host%20field\r\n/i, `${engine}: l5d-err says why`);
    t.equal(two.split('HTTP/1.1 ').length, 2, `${engine}: one answer, then the connection is closed (the request after it is not served)`);
    const v2 = await ask('GET / HTTP/2.0\r\nHost: world\r\n\r\n');
    t.match(v2, /^HTTP\/1\.1 505 HTTP Version Not Supported\r\n[^]*l5d-err: HTTP%2F2\.0%20is%20not%20served%20here/i, `${engine}: 505`);
    const ok = await ask('GET / HTTP/1.1\r\nHost: world\r\nConnection: close\r\n\r\n');
    t.match(ok, /^HTTP\/1\.1 200 /, `${engine}: a normal request is routed`);
    t.equal(routed, 1, `${engine}: only the normal request reached the router's stages`);
  }
});
