// One decision for every entry path (issue 22 item 1): the same caller, claim, override check and
// authorization decision whether a request comes as plain HTTP/1, as an Upgrade over HTTP/1.1 or
// HTTP/1.0, or inside a CONNECT tunnel. Two routers over real mTLS with names, pods and the
// routers' own Service from the Kubernetes test API server; raw sockets; one table: adding an
// entry path is adding its request bytes to requestText and its name to PATHS. HTTP/2 (the
// `protocol: h2` routers) runs the same rows with node:http2 clients: plain h2 (a refusal is HTTP
// 403 with l5d-err) and gRPC (a refusal is the trailers-only PERMISSION_DENIED, grpc-status 7).

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, pod, service } from '../helpers/k8s.js';
import { NODES, startK8sMesh } from '../helpers/k8s-mesh.js';
import { freePort } from '../helpers/ports.js';

const A = NODES[0].ip;
const B = NODES[1].ip;
const WEB = '127.0.0.20'; // shop/web-1 on node-a, service account web
const BATCH = '127.0.0.21'; // shop/batch-1 on node-a, service account batch
const FOREIGN = '127.0.0.30'; // shop/api-1: a pod of node-b
const NODE = '127.0.0.40'; // no pod: loopback, so it counts as the node itself
const APP = '127.0.0.50'; // default/app-1 on node-b: Services default/open and default/closed
const LOGS = '127.0.0.51'; // audited/logs-1 on node-b: Service audited/logs
const ID = { web: /^web\.shop\./, batch: /^batch\.shop\./, node: /\/node\/node-a$/ };

// default denies; `closed` is for web and the nodes only, `open` for batch too; audited audits;
// shop may not send overrides.
const POLICY = `namespaces:
  default: deny
  audited: audit
  shop: {allowDtabOverride: false}
rules:
  - name: web-anything
    from: [{namespace: shop, serviceAccount: web}]
    to: [{namespace: default}, {namespace: audited}]
  - name: batch-open
    from: [{namespace: shop, serviceAccount: batch}]
    to: [{namespace: default, service: open}]
  - name: nodes-anything
    from: [{node: "*"}]
    to: [{namespace: "*"}]
`;
const DTAB = '/srv => /#/io.l5d.k8s/default/http; /svc => /srv; /svc/logs => /#/io.l5d.k8s/audited/http/logs;';

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-entry-'));
await writeFile(join(dir, 'policy.yaml'), POLICY);
const api = await new FakeApiServer().start();
const mesh = await startK8sMesh(api, {
  h2: true,
  configure: (c) => ({
    ...c,
    routers: c.routers.map((r) => ({ ...r, dtab: DTAB })),
    authz: { policyFile: join(dir, 'policy.yaml'), pollMs: 60_000 },
  }),
});
t.teardown(async () => {
  await mesh.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});
// The app: answers a request, and an Upgrade with 101, with who called and which name was bound;
// the same port answers h2c (prior knowledge: the connection preface picks the server).
function said(req: { headers: http.IncomingHttpHeaders }): string {
  return JSON.stringify({ id: req.headers['l5d-client-id'] ?? null, dst: req.headers['l5d-dst-client'] ?? null });
}
const appPort = await freePort(APP);
const apps: net.Server[] = [];
const h2Apps: http2.Http2Server[] = [];
const sockets = new Set<net.Socket>();
for (const ip of [APP, LOGS]) {
  const app = http.createServer((req, res) => res.end(said(req)));
  app.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n${said(req)}`);
  });
  const h2app = http2.createServer((req, res) => {
    res.setHeader('content-type', String(req.headers['content-type'] ?? 'text/plain'));
    res.end(said(req));
  });
  h2Apps.push(h2app);
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first.toString('latin1').startsWith('PRI '))
        h2app.emit('connection', socket); // the session reads what is buffered
      else {
        app.emit('connection', socket);
        socket.resume();
      }
    });
  });
  await new Promise<void>((resolve) => front.listen(appPort, ip, resolve));
  apps.push(front, app);
}
t.teardown(async () => {
  for (const h of h2Apps) h.close();
  for (const s of sockets) s.destroy(); // the routers keep their h2 sessions to the apps open
  await Promise.all(apps.map((a) => new Promise((r) => a.close(r))));
});
for (const [ns, name, node, ip, sa] of [
  ['shop', 'web-1', 'node-a', WEB, 'web'],
  ['shop', 'batch-1', 'node-a', BATCH, 'batch'],
  ['shop', 'api-1', 'node-b', FOREIGN, 'api'],
  ['default', 'app-1', 'node-b', APP, 'app'],
  ['audited', 'logs-1', 'node-b', LOGS, 'logs'],
] as const) {
  api.apply(pod(ns, name, node, ip, { sa }));
}
for (const [ns, svc, ip] of [
  ['default', 'open', APP],
  ['default', 'closed', APP],
  ['audited', 'logs', LOGS],
] as const) {
  api.apply(service(ns, svc, [{ name: 'http', port: 80 }]));
  api.apply(endpointSlice(ns, `${svc}-x`, svc, [{ ip, node: 'node-b' }], [{ name: 'http', port: appPort }]));
}

interface Answer {
  status: number;
  err: string;
  body: string;
}

/** Everything the server sends until it closes: the status line, l5d-err and what follows the head. */
function exchange(socket: net.Socket, write: (s: net.Socket) => void, afterConnect?: string): Promise<Answer> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    let stage: 'connect' | 'inner' = afterConnect === undefined ? 'inner' : 'connect';
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const text = data.toString('latin1');
      if (stage === 'connect' && text.includes('\r\n\r\n')) {
        if (!/^HTTP\/1\.1 200 /.test(text)) return; // a refused CONNECT: read its answer to the end
        stage = 'inner';
        data = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1');
        socket.write(afterConnect as string);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const text = data.toString('utf8');
      const head = text.split('\r\n\r\n')[0] ?? '';
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const err = /\r\nl5d-err: ([^\r]*)/i.exec(head)?.[1];
      resolve({ status, err: err === undefined ? '' : decodeURIComponent(err), body: text.slice(head.length + 4) });
    });
    write(socket);
    setTimeout(() => socket.destroy(), 8000).unref();
  });
}

type Path = 'http1' | 'upgrade/1.1' | 'upgrade/1.0' | 'connect' | 'h2' | 'h2/grpc';
const PATHS: readonly Path[] = ['http1', 'upgrade/1.1', 'upgrade/1.0', 'connect', 'h2', 'h2/grpc'];
type Raw = Exclude<Path, 'h2' | 'h2/grpc'>;

/** The request of one entry path, as raw bytes (the request inside the tunnel for CONNECT). */
function requestText(path: Raw, name: string, headers: Record<string, string>): { first: string; inner?: string } {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const plain = `GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n${extra}\r\n`;
  switch (path) {
    case 'http1':
      return { first: plain };
    case 'upgrade/1.1':
      return { first: `GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n` };
    case 'upgrade/1.0':
      return { first: `GET / HTTP/1.0\r\nHost: ${name}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${extra}\r\n` };
    case 'connect':
      return { first: `CONNECT ${name}:80 HTTP/1.1\r\nHost: ${name}:80\r\n\r\n`, inner: plain };
  }
}

type Caller = 'web' | 'batch' | 'node' | 'foreign' | 'forged' | 'claimed-batch';
const CLAIMS = { forged: 'shop/api-1; sa=api', 'claimed-batch': 'shop/batch-1; sa=batch' } as const;
const LOCAL = { web: WEB, batch: BATCH, node: NODE, foreign: FOREIGN } as const;

/**
 * One HTTP/2 request: from a pod or the node (a connection from its address) to node-a's h2
 * outgoing port in h2c, or with node-a's certificate straight to node-b's h2 incoming port (mTLS,
 * ALPN h2) carrying a claim. A gRPC refusal (grpc-status 7) reads as 403, as the HTTP one.
 */
function sendH2(caller: Caller, grpc: boolean, name: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve) => {
    let session: http2.ClientHttp2Session;
    const extra: Record<string, string> = { ...headers };
    if (caller === 'forged' || caller === 'claimed-batch') {
      const certs = mesh.pki.nodes.get('node-a') as { cert: string; key: string };
      extra['l5d-hostmesh-client-pod'] = CLAIMS[caller];
      session = http2.connect(`https://${B}:${mesh.ports.h2Incoming}`, {
        ca: readFileSync(mesh.pki.ca),
        cert: readFileSync(certs.cert),
        key: readFileSync(certs.key),
        servername: 'hostmesh',
      });
    } else {
      const localAddress = LOCAL[caller];
      session = http2.connect(`http://${A}:${mesh.ports.h2Outgoing}`, {
        createConnection: () => net.connect({ host: A, port: mesh.ports.h2Outgoing as number, localAddress }),
      });
    }
    let done = false;
    const finish = (a: Answer): void => {
      if (done) return;
      done = true;
      session.destroy();
      resolve(a);
    };
    const none = (): void => finish({ status: 0, err: '', body: '' });
    session.on('error', none);
    session.on('close', none);
    setTimeout(none, 8000).unref();
    const req = session.request({
      ':method': grpc ? 'POST' : 'GET',
      ':path': grpc ? '/test.Echo/Said' : '/',
      ':authority': name,
      ...(grpc ? { 'content-type': 'application/grpc', te: 'trailers' } : {}),
      ...extra,
    });
    req.on('error', none);
    req.end();
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => (head = h));
    req.on('trailers', (h) => (trailers = h));
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const grpcStatus = head['grpc-status'] ?? trailers['grpc-status'];
      let status = Number(head[':status'] ?? 0);
      // gRPC: a refusal must be the trailers-only PERMISSION_DENIED (HTTP 200); anything else shows as itself.
      if (grpc && grpcStatus !== undefined) status = grpcStatus === '7' && status === 200 ? 403 : 1000 + Number(grpcStatus);
      else if (grpc && status !== 200 && status !== 0) status += 10_000;
      const err = String(head['l5d-err'] ?? trailers['l5d-err'] ?? '');
      finish({ status, err: decodeURIComponent(err), body });
    });
  });
}

/** Sends a request on `path` as `caller`: a pod or the node through node-a's outgoing port, or node-a's certificate straight to node-b. */
function send(caller: Caller, path: Path, name: string, headers: Record<string, string> = {}): Promise<Answer> {
  if (path === 'h2' || path === 'h2/grpc') return sendH2(caller, path === 'h2/grpc', name, headers);
  if (caller === 'forged' || caller === 'claimed-batch') {
    // What node-a's router would send to node-b, with a claim: a false one, or batch's true one.
    const claim = CLAIMS[caller];
    const claimed = requestText(path, name, { ...headers, 'l5d-hostmesh-client-pod': claim });
    const certs = mesh.pki.nodes.get('node-a') as { cert: string; key: string };
    const s = tls.connect({
      host: B,
      port: mesh.ports.incoming,
      ca: readFileSync(mesh.pki.ca),
      cert: readFileSync(certs.cert),
      key: readFileSync(certs.key),
      servername: 'hostmesh',
    });
    return exchange(s, (sock) => sock.once('secureConnect', () => sock.write(claimed.first)), claimed.inner);
  }
  const { first, inner } = requestText(path, name, headers);
  const localAddress = LOCAL[caller];
  const s = net.connect({ host: A, port: mesh.ports.outgoing, localAddress });
  return exchange(s, (sock) => sock.once('connect', () => sock.write(first)), inner);
}

type Expect = { ok: { id: RegExp; dst: string } } | { refused: number; code: RegExp } | { closed: true };
interface Row {
  readonly caller: Caller;
  readonly name: string;
  readonly headers?: Record<string, string>;
  /** 'ok': answered by the app (101 for an Upgrade, 200 otherwise) as `id` reaching `dst`. */
  readonly expect: Expect;
  /** Also counted as one audit decision at node-b. */
  readonly audit?: boolean;
  /** Paths where the row's outcome differs by design (CONNECT is refused on the incoming port). */
  readonly except?: Partial<Record<Path, Expect>>;
}

const k8s = (ns: string, n: string): string => `/#/io.l5d.k8s/${ns}/http/${n}`;
const CONNECT_INBOUND = { refused: 403, code: /CONNECT is not accepted here/ };
const INBOUND = { except: { connect: CONNECT_INBOUND } };
const OVERRIDE = { 'l5d-dtab': '/svc/closed => /svc/open' };
const DENIED_BATCH = { refused: 403, code: /^authorization denied: .*batch\.shop/ };
const ROWS: readonly Row[] = [
  // allowed, by the caller's own rule
  { caller: 'web', name: 'closed', expect: { ok: { id: ID.web, dst: k8s('default', 'closed') } } },
  { caller: 'batch', name: 'open', expect: { ok: { id: ID.batch, dst: k8s('default', 'open') } } },
  { caller: 'node', name: 'closed', expect: { ok: { id: ID.node, dst: k8s('default', 'closed') } } },
  // denied: batch may not reach `closed`, however it asks
  { caller: 'batch', name: 'closed', expect: DENIED_BATCH },
  // a true claim straight to node-b is decided on the pod it names, not on node-a
  { caller: 'claimed-batch', name: 'closed', expect: DENIED_BATCH, ...INBOUND },
  { caller: 'claimed-batch', name: 'open', expect: { ok: { id: ID.batch, dst: k8s('default', 'open') } }, ...INBOUND },
  // a forged claim is refused, never taken for the node
  { caller: 'forged', name: 'closed', expect: { refused: 403, code: /^workload identity refused: .*does not run on node node-a/ }, ...INBOUND },
  // a pod of another node gets no answer at all on node-a's outgoing port
  { caller: 'foreign', name: 'open', expect: { closed: true } },
  // overrides: refused for shop (allowDtabOverride: false), honoured for the node
  { caller: 'web', name: 'closed', headers: OVERRIDE, expect: { refused: 403, code: /^l5d-dtab overrides are not allowed for web\.shop/ } },
  { caller: 'batch', name: 'open', headers: OVERRIDE, expect: { refused: 403, code: /^l5d-dtab overrides are not allowed for batch\.shop/ } },
  { caller: 'node', name: 'closed', headers: OVERRIDE, expect: { ok: { id: ID.node, dst: k8s('default', 'open') } } },
  // audit: the would-deny is let through with the caller's own identity, and counted
  { caller: 'batch', name: 'logs', audit: true, expect: { ok: { id: ID.batch, dst: k8s('audited', 'logs') } } },
  { caller: 'claimed-batch', name: 'logs', audit: true, expect: { ok: { id: ID.batch, dst: k8s('audited', 'logs') } }, ...INBOUND },
];

async function auditCount(): Promise<number> {
  const metric = (await mesh.meshes[1]?.metrics.registry.getMetricsAsJSON())?.find((x) => x.name === 'hostmesh_authz_total');
  let n = 0;
  for (const v of metric?.values ?? []) if ((v.labels as Record<string, unknown>)['decision'] === 'audit') n += v.value;
  return n;
}

t.before(async () => {
  // Names bound, pods known on both nodes (the web pod is admitted on node-a's outgoing port).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ready = await Promise.all([send('web', 'http1', 'open'), send('node', 'http1', 'logs'), send('web', 'h2', 'open')]);
    if (ready.every((a) => a.status === 200)) return;
    if (Date.now() > deadline) throw new Error(`the mesh never became ready: ${JSON.stringify(ready)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

for (const path of PATHS) {
  t.test(`entry path ${path}: caller x outcome`, async (t) => {
    for (const row of ROWS) {
      const label = `${path} ${row.caller} -> ${row.name}${row.headers ? ' (override)' : ''}`;
      const expect = row.except?.[path] ?? row.expect;
      const audits = row.audit === true ? await auditCount() : 0;
      const a = await send(row.caller, path, row.name, row.headers);
      if ('ok' in expect) {
        t.equal(a.status, path.startsWith('upgrade') ? 101 : 200, `${label}: answered by the app (${a.err})`);
        let said: { id?: string; dst?: string } = {};
        try {
          said = JSON.parse(a.body) as typeof said;
        } catch {}
        t.match(said.id, expect.ok.id, `${label}: the app saw the decided caller`);
        t.equal(said.dst, expect.ok.dst, `${label}: ...at the decided destination`);
        if (row.audit === true && !('refused' in (row.except?.[path] ?? {}))) t.equal((await auditCount()) - audits, 1, `${label}: counted as audit once`);
      } else if ('refused' in expect) {
        t.equal(a.status, expect.refused, `${label}: refused`);
        t.match(a.err, expect.code, `${label}: l5d-err says why`);
        t.notMatch(a.body, /"id"/, `${label}: the app never saw it`);
      } else {
        t.same({ status: a.status, body: a.body }, { status: 0, body: '' }, `${label}: closed without an answer`);
      }
    }
  });
}
