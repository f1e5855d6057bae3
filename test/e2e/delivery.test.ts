// Kubernetes data is hostile input (issue 23 items 3, 4 and "nodeName lies"): the incoming router
// delivers only to a pod its pod watch knows on its own node, in the bound Service's namespace,
// and the policy decides on that workload. Tenant objects served by the Kubernetes test API
// server: a selectorless Service whose hand-written slice names another tenant's pod, a slice
// whose nodeName lies, a slice naming a node's own address, an IP no pod has, a hostNetwork pod.
// Two routers over mTLS, real sockets.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, pod, service, type SliceEndpoint } from '../helpers/k8s.js';
import { NODES, startK8sMesh } from '../helpers/k8s-mesh.js';
import { request, type Reply } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';

const A = NODES[0].ip;
const NODE_B = NODES[1].ip; // node-b's own address: a hostNetwork service listens there
const B_APP = '127.0.0.60'; // tenant-b/b-app-1 on node-b (deny by default, only tenant-b may call)
const A_APP = '127.0.0.61'; // tenant-a/a-app-1 on node-b
const NO_POD = '127.0.0.62'; // a server no Pod names
const C_APP = '127.0.0.63'; // tenant-c/c-app-1 on node-b, service account c-app
const C_ADMIN = '127.0.0.64'; // tenant-c/c-admin-1 on node-b, service account c-admin

// tenant-a allows everything (the attacker's own namespace); tenant-b denies all but itself;
// tenant-c allows the nodes only to the pods of service account c-app, whatever the Service name.
const POLICY = `namespaces:
  tenant-b: deny
  tenant-c: deny
rules:
  - name: b-internal
    from: [{namespace: tenant-b}]
    to: [{namespace: tenant-b}]
  - name: c-app-only
    from: [{node: "*"}]
    to: [{namespace: tenant-c, serviceAccount: c-app}]
`;
const NAMES: [string, string, string][] = [
  ['spoof', 'tenant-a', 'spoof'],
  ['liar', 'tenant-a', 'liar'],
  ['nodeaddr', 'tenant-a', 'nodeaddr'],
  ['nopod', 'tenant-a', 'nopod'],
  ['hostnet', 'tenant-a', 'hostnet'],
  ['a-app', 'tenant-a', 'app'],
  ['b-app', 'tenant-b', 'app'],
  ['c-app', 'tenant-c', 'app'],
  ['c-front', 'tenant-c', 'front'],
];
const DTAB = NAMES.map(([name, ns, svc]) => `/svc/${name} => /#/io.l5d.k8s/${ns}/http/${svc};`).join(' ');

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-delivery-'));
await writeFile(join(dir, 'policy.yaml'), POLICY);
const api = await new FakeApiServer().start();
const mesh = await startK8sMesh(api, {
  configure: (c) => ({ ...c, routers: c.routers.map((r) => ({ ...r, dtab: DTAB })), authz: { policyFile: join(dir, 'policy.yaml'), pollMs: 60_000 } }),
});
t.teardown(async () => {
  await mesh.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

// Every "workload" counts what reaches it: a refused delivery must reach nothing.
const hits = new Map<string, number>();
const port = await freePort(B_APP);
const servers: http.Server[] = [];
for (const [ip, label] of [
  [B_APP, 'b-app'],
  [A_APP, 'a-app'],
  [NO_POD, 'no-pod'],
  [C_APP, 'c-app'],
  [C_ADMIN, 'c-admin'],
  [NODE_B, 'node-b-host'],
] as const) {
  const s = http.createServer((req, res) => {
    req.resume();
    hits.set(label, (hits.get(label) ?? 0) + 1);
    res.end(label);
  });
  await new Promise<void>((resolve) => s.listen(port, ip, resolve));
  servers.push(s);
}
t.teardown(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

api.apply(pod('tenant-b', 'b-app-1', 'node-b', B_APP, { sa: 'b-app' }));
api.apply(pod('tenant-a', 'a-app-1', 'node-b', A_APP, { sa: 'a-app' }));
api.apply(pod('tenant-c', 'c-app-1', 'node-b', C_APP, { sa: 'c-app' }));
api.apply(pod('tenant-c', 'c-admin-1', 'node-b', C_ADMIN, { sa: 'c-admin' }));
// A hostNetwork pod of tenant-a on node-b: its address is node-b's.
api.apply(pod('tenant-a', 'hostnet-1', 'node-b', NODE_B, { sa: 'a-host', hostNetwork: true }));

function publish(ns: string, svc: string, endpoints: SliceEndpoint[]): void {
  api.apply(service(ns, svc, [{ name: 'http', port: 80 }]));
  api.apply(endpointSlice(ns, `${svc}-x`, svc, endpoints, [{ name: 'http', port }]));
}
publish('tenant-b', 'app', [{ ip: B_APP, node: 'node-b' }]);
publish('tenant-a', 'app', [{ ip: A_APP, node: 'node-b' }]);
publish('tenant-c', 'app', [{ ip: C_APP, node: 'node-b' }]);
// The attacks (tenant-a holds only rights in its own namespace):
publish('tenant-a', 'spoof', [{ ip: B_APP, node: 'node-b' }]); // another tenant's pod
publish('tenant-a', 'liar', [{ ip: A_APP, node: 'node-a' }]); // its own pod, on node-b, claimed on node-a
publish('tenant-a', 'nodeaddr', [{ ip: NODE_B, node: 'node-b' }]); // the node's own address
publish('tenant-a', 'nopod', [{ ip: NO_POD, node: 'node-b' }]); // an address no pod has
publish('tenant-a', 'hostnet', [{ ip: NODE_B, node: 'node-b' }]); // a hostNetwork pod (not allowed by default)
// tenant-c: a Service whose slice names the c-admin pod: the name is c's, the workload is not c-app.
publish('tenant-c', 'front', [{ ip: C_ADMIN, node: 'node-b' }]);

const via = (name: string): Promise<Reply> =>
  request({ host: A, port: mesh.ports.outgoing, path: `http://${name}/` }).catch((e: Error) => ({ status: 0, headers: {}, body: e.message }));
const err = (r: Reply): string => decodeURIComponent(String(r.headers['l5d-err'] ?? ''));

t.before(async () => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await Promise.all([via('a-app'), via('c-app')]);
    if (r.every((x) => x.status === 200)) return;
    if (Date.now() > deadline) throw new Error(`never routable: ${JSON.stringify(r.map((x) => [x.status, err(x)]))}`);
    await new Promise((res) => setTimeout(res, 50));
  }
});

interface Row {
  readonly name: string;
  readonly what: string;
  readonly status: number;
  readonly err?: RegExp;
  /** The server that answers when delivered. */
  readonly reaches?: string;
}
const ROWS: readonly Row[] = [
  { name: 'a-app', what: "a tenant's own Service and pod", status: 200, reaches: 'a-app' },
  { name: 'b-app', what: "a direct call to tenant-b's service is decided by tenant-b's rules", status: 403, err: /authorization denied: .*tenant-b/ },
  {
    name: 'spoof',
    what: "a selectorless Service naming another tenant's pod is not delivered",
    status: 502,
    err: /1 a pod of another namespace/,
  },
  { name: 'liar', what: 'a slice whose nodeName lies: the pod runs on node-b, node-a does not deliver off-node', status: 502, err: /1 a pod of another node/ },
  { name: 'nodeaddr', what: "a slice naming the node's own address gets nothing", status: 502, err: /1 not a known pod address/ },
  { name: 'nopod', what: 'an address no pod has gets nothing', status: 502, err: /1 not a known pod address/ },
  { name: 'hostnet', what: 'a hostNetwork pod gets nothing unless hostNetworkPods is configured', status: 502, err: /1 not a known pod address/ },
  { name: 'c-app', what: "policy allows tenant-c's c-app workload", status: 200, reaches: 'c-app' },
  {
    name: 'c-front',
    what: 'policy decides on the workload that answers (service account c-admin), not on the name',
    status: 403,
    err: /authorization denied: .*pod tenant-c\/c-admin-1, service account c-admin/,
  },
];

t.test('hostile EndpointSlices: delivered only to a known pod on this node, in the name namespace; policy on that workload', async (t) => {
  for (const row of ROWS) {
    const before = new Map(hits);
    const r = await via(row.name);
    t.equal(r.status, row.status, `${row.name}: ${row.what} (${err(r)})`);
    if (row.err !== undefined) t.match(err(r), row.err, `${row.name}: l5d-err says why`);
    const reached = [...hits].filter(([k, n]) => n !== (before.get(k) ?? 0)).map(([k]) => k);
    t.same(reached, row.reaches === undefined ? [] : [row.reaches], `${row.name}: reached ${row.reaches ?? 'nothing'}`);
  }
  // Counted at node-b's incoming router (the spoof, the node address, the unknown IP, the hostNetwork pod)
  // and node-a's (the liar).
  let refused = 0;
  for (const m of mesh.meshes) {
    const metric = (await m.metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'hostmesh_delivery_refused_total');
    for (const v of metric?.values ?? []) refused += v.value;
  }
  t.ok(refused >= 5, `refusals counted (${refused})`);
  t.equal((await via('a-app')).status, 200, 'normal traffic flows after the attacks');
});
