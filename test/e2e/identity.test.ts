// Workload identity across the per-node hop, on the demo mesh (two routers, real mTLS, the demo's
// pods on their own loopback addresses): a local pod's identity reaches the app as l5d-client-id,
// a pod of another node is refused on node-a's outgoing port, copies of the identity headers from
// pods are dropped, and forged claims sent straight to node-b's mTLS port are refused with 403.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { A, B, listen, startMesh } from '../helpers/mesh.js';
import { request } from '../helpers/http.js';

const WEB = '127.0.0.20'; // shop/web-7f9c on node-a, service account web
const API = '127.0.0.30'; // shop/api-9x1z on node-b
const STRANGER = '127.0.0.40'; // no pod: loopback, so it counts as the node itself

const mesh = await startMesh();
t.teardown(() => mesh.close());
const echo = await listen(
  http.createServer((req, res) => res.end(JSON.stringify({ id: req.headers['l5d-client-id'] ?? null, claim: req.headers['l5d-hostmesh-client-pod'] ?? null }))),
  B,
);
t.teardown(() => echo.close());
await mesh.register('who', echo);

function viaA(source: string, headers: http.OutgoingHttpHeaders = {}) {
  return request({ host: A, port: mesh.ports.outgoing, localAddress: source, path: 'http://who/', headers });
}

/** A request straight to node-b's incoming port with node-a's certificate (what node-a's router sends). */
function asNodeA(headers: http.OutgoingHttpHeaders): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const certs = join(mesh.demo.dir, 'certs');
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: B,
        port: mesh.ports.incoming,
        path: '/',
        headers: { host: 'who', ...headers },
        ca: readFileSync(join(certs, 'ca.pem')),
        cert: readFileSync(join(certs, 'node-a.pem')),
        key: readFileSync(join(certs, 'node-a.key')),
        servername: 'hostmesh',
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function metric(name: string, labels: string): Promise<number> {
  const r = await request({ host: A, port: mesh.ports.admin, path: '/metrics' });
  const r2 = await request({ host: B, port: mesh.ports.admin, path: '/metrics' });
  let sum = 0;
  for (const text of [r.body, r2.body]) {
    for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(labels)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

t.test("a local pod's workload identity reaches the app; the pod cannot forge it", async (t) => {
  const r = await viaA(WEB, {
    'l5d-client-id': 'admin.kube-system.serviceaccount.identity.hostmesh.cluster.local',
    'l5d-hostmesh-client-pod': 'kube-system/x; sa=admin',
  });
  t.equal(r.status, 200);
  t.same(
    JSON.parse(r.body),
    { id: 'web.shop.serviceaccount.identity.hostmesh.cluster.local', claim: null },
    'identity from the source pod; the copies it sent are dropped; the claim never reaches the app',
  );
  t.ok((await metric('hostmesh_identity_claims_total', 'result="ok"')) >= 1, 'counted at node-b');
});

t.test('the node itself (hostNetwork, loopback) speaks with the node identity', async (t) => {
  const r = await viaA(STRANGER);
  t.equal(r.status, 200);
  t.same(JSON.parse(r.body), { id: 'spiffe://hostmesh/node/node-a', claim: null });
});

t.test("a pod of another node is refused on this node's outgoing port before a request is read", async (t) => {
  const before = await metric('hostmesh_connections_refused_total', 'reason="not_local"');
  const closed = await new Promise<{ data: string; closed: boolean }>((resolve) => {
    const s = net.connect({ host: A, port: mesh.ports.outgoing, localAddress: API });
    let data = '';
    s.on('data', (c) => (data += c.toString()));
    s.on('connect', () => s.write('GET http://who/ HTTP/1.1\r\nHost: who\r\n\r\n'));
    s.on('close', () => resolve({ data, closed: true }));
    s.on('error', () => undefined);
    setTimeout(() => resolve({ data, closed: false }), 3000).unref();
  });
  t.same(closed, { data: '', closed: true }, 'closed with nothing answered');
  t.equal((await metric('hostmesh_connections_refused_total', 'reason="not_local"')) - before, 1, 'counted once');
  const r = await viaA(WEB);
  t.equal(r.status, 200, 'a local pod is served right after');
});

t.test('forged claims from a peer router are refused with a reason', async (t) => {
  const ok = await asNodeA({ 'l5d-hostmesh-client-pod': 'shop/web-7f9c; sa=web' });
  t.equal(ok.status, 200, 'a true claim by the node that hosts the pod');
  t.equal(JSON.parse(ok.body).id, 'web.shop.serviceaccount.identity.hostmesh.cluster.local');
  const cases: [string, RegExp][] = [
    ['shop/api-9x1z; sa=api', /does not run on node node-a/],
    ['shop/web-7f9c; sa=admin', /does not use service account admin/],
    ['shop/nobody; sa=default', /no pod shop\/nobody is known/],
    ['shop/web-7f9c', /is not "<namespace>\/<pod>; sa=<serviceaccount>"/],
  ];
  for (const [claim, reason] of cases) {
    const r = await asNodeA({ 'l5d-hostmesh-client-pod': claim });
    t.equal(r.status, 403, claim);
    t.match(decodeURIComponent(String(r.headers['l5d-err'])), reason, `l5d-err: ${claim}`);
    t.notMatch(r.body, /web\.shop|api\.shop/, 'no identity was granted');
  }
  t.ok((await metric('hostmesh_identity_claims_total', 'result="wrong_node"')) >= 1);
  t.ok((await metric('hostmesh_identity_claims_total', 'result="wrong_service_account"')) >= 1);
  t.ok((await metric('hostmesh_identity_claims_total', 'result="unknown_pod"')) >= 1);
  const after = await viaA(WEB);
  t.equal(after.status, 200, 'traffic is served after the forgeries');
});

t.test("the demo policy decides on the caller's workload identity", async (t) => {
  const denied = await viaA('127.0.0.21'); // shop/batch-2k4d: may call only world-v2
  t.equal(denied.status, 403);
  t.match(decodeURIComponent(String(denied.headers['l5d-err'])), /batch\.shop\.serviceaccount\.identity\.hostmesh\.cluster\.local/, 'l5d-err names the caller');
  const allowed = await request({ host: A, port: mesh.ports.outgoing, localAddress: '127.0.0.21', path: 'http://world-v2/' });
  t.equal(allowed.status, 200, 'its one allowed destination');
  t.equal((await viaA(WEB)).status, 200, 'the web pod may call anything');
});
