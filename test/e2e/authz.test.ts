// Authorization on the request path through two routers over real mTLS (the k8s test mesh): the
// incoming router decides on the final bound name, so an l5d-dtab override cannot reach a denied
// service; audit allows and counts; overrides refused per caller namespace; reloads under load.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { mkdir, mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service } from '../helpers/k8s.js';
import { NODES, startK8sMesh, type K8sMesh } from '../helpers/k8s-mesh.js';
import { request, type Reply } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';

const A = NODES[0].ip;
let api: FakeApiServer;
let mesh: K8sMesh;
let dir: string;
/** One policy file per node, so a test reloads only the router it is about (a reload parses in a worker). */
const policyFiles: string[] = [];

const policy = (opts: { overrides?: boolean; secretRule?: boolean; extraRules?: number } = {}): string =>
  [
    'namespaces:',
    '  default: deny',
    '  audited: audit',
    `  "*": {allowDtabOverride: ${opts.overrides ?? true}}`,
    'rules:',
    '  - name: open-to-web',
    '    from: [{identity: "*"}]',
    '    to: [{namespace: default, service: web}]',
    ...(opts.secretRule === true ? ['  - name: secret-now-open', '    from: [{identity: "*"}]', '    to: [{namespace: default, service: secret}]'] : []),
    ...Array.from(
      { length: opts.extraRules ?? 0 },
      (_, i) => `  - name: filler-${i}\n    from: [{namespace: team-${i}}]\n    to: [{namespace: default, service: web, paths: [/v${i}/]}]`,
    ),
    '',
  ].join('\n');

/** Replaces node `m`'s policy the way a ConfigMap update does (a new file renamed over the old) and applies it. */
async function setPolicy(m: number, text: string): Promise<void> {
  const file = policyFiles[m] as string;
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
  await mesh.meshes[m]?.policy?.check();
}

const via = (name: string, headers: Record<string, string> = {}): Promise<Reply> =>
  request({ host: A, port: mesh.ports.outgoing, path: `http://${name}/`, headers }).catch((e: Error) => ({ status: 0, headers: {}, body: e.message }));

async function eventually(check: () => Promise<boolean>, ms = 8000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function counter(m: number, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await mesh.meshes[m]?.metrics.registry.getMetricsAsJSON())?.find((x) => x.name === name);
  let n = 0;
  for (const v of metric?.values ?? []) {
    if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) n += v.value;
  }
  return n;
}

async function adminJson(m: number, path: string): Promise<{ status: number; json: unknown }> {
  const r = await request({ host: NODES[m]?.ip, port: mesh.ports.admin, path });
  return { status: r.status, json: JSON.parse(r.body) as unknown };
}

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-authz-'));
  for (const node of NODES) {
    const file = join(dir, node.name, 'policy.yaml');
    await mkdir(join(dir, node.name));
    await writeFile(file, policy());
    policyFiles.push(file);
  }
  api = await new FakeApiServer().start();
  // pollMs is the safety net; tests apply versions at once with check().
  mesh = await startK8sMesh(api, { configure: (c, node) => ({ ...c, authz: { policyFile: join(dir, node, 'policy.yaml'), pollMs: 60_000 } }) });
  const port = await freePort('127.0.0.20');
  await mesh.startPods(
    [
      { name: 'web-1', ip: '127.0.0.20', node: 'node-b' },
      { name: 'secret-1', ip: '127.0.0.21', node: 'node-b' },
      { name: 'logs-1', ip: '127.0.0.22', node: 'node-b', namespace: 'audited' },
    ],
    port,
  );
  for (const [ns, svc, ip] of [
    ['default', 'web', '127.0.0.20'],
    ['default', 'secret', '127.0.0.21'],
    ['audited', 'logs', '127.0.0.22'],
  ] as const) {
    api.apply(service(ns, svc, [{ name: 'http', port: 80 }]));
    api.apply(endpointSlice(ns, `${svc}-x`, svc, [{ ip, node: 'node-b' }], [{ name: 'http', port }]));
  }
  if (!(await eventually(async () => (await via('web')).status === 200))) throw new Error('web never became routable');
});
t.teardown(async () => {
  await mesh.close();
  await api.close();
  await rm(dir, { recursive: true, force: true });
});

t.test('allow and deny on the final destination: 403 AUTHZ_DENIED naming caller and reason; the pod never sees it', async (t) => {
  const ok = await via('web');
  t.equal(ok.status, 200);
  t.equal(ok.body, 'web-1');
  const denied = await via('secret');
  t.equal(denied.status, 403, 'no rule allows default/secret and default defaults to deny');
  t.equal(denied.headers['x-pod'], undefined, 'answered by the router, not the pod');
  const err = decodeURIComponent(String(denied.headers['l5d-err']));
  t.match(err, /^authorization denied: no rule allows /, 'l5d-err says why');
  t.match(err, /node-a|serviceaccount|unauthenticated/, 'l5d-err names the caller');
  t.match(err, /default\/secret/, 'l5d-err names the destination');
  t.match(err, /namespace 'default' defaults to deny/);
  t.ok((await counter(1, 'hostmesh_authz_total', { router: 'incoming', decision: 'deny' })) >= 1, 'counted as deny at the incoming router of node-b');
  t.ok((await counter(1, 'hostmesh_authz_total', { router: 'incoming', decision: 'allow' })) >= 1, 'allowed calls counted');
  t.equal(await counter(0, 'hostmesh_authz_total', { router: 'outgoing' }), 0, 'the outgoing router decides nothing about destinations');
});

t.test('an l5d-dtab override rerouting an allowed name to a denied service is 403: the override cannot escape policy', async (t) => {
  const r = await via('web', { 'l5d-dtab': '/svc/web => /#/io.l5d.k8s/default/http/secret' });
  t.equal(r.status, 403);
  t.equal(r.headers['x-pod'], undefined);
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), /default\/secret/, 'the final destination, not the logical /svc/web, is decided');
  const deeper = await via('web', { 'l5d-dtab': '/x => /#/io.l5d.k8s/default/http; /svc/web => /x/secret' });
  t.equal(deeper.status, 403, 'through a chain of rewrites too');
  const fine = await via('anything', { 'l5d-dtab': '/svc/anything => /#/io.l5d.k8s/default/http/web' });
  t.equal(fine.status, 200, 'an override reaching an allowed service is honoured');
  t.equal(fine.body, 'web-1');
});

t.test('audit: a would-deny is allowed, and counted as audit', async (t) => {
  const before = await counter(1, 'hostmesh_authz_total', { router: 'incoming', decision: 'audit' });
  const r = await via('logs', { 'l5d-dtab': '/svc/logs => /#/io.l5d.k8s/audited/http/logs' });
  t.equal(r.status, 200);
  t.equal(r.body, 'logs-1');
  t.equal(await counter(1, 'hostmesh_authz_total', { router: 'incoming', decision: 'audit' }), before + 1);
});

t.test('the dashboard JSON: callers per destination with allowed and denied counts; explain.json', async (t) => {
  const callers = (await adminJson(1, '/authz/callers.json')).json as {
    policy: boolean;
    routers: { label: string; destinations: { destination: string; callers: { identity: string; allowed: number; denied: number }[] }[] }[];
  };
  t.equal(callers.policy, true);
  const incoming = callers.routers.find((r) => r.label === 'incoming');
  const secret = incoming?.destinations.find((d) => d.destination === '/#/io.l5d.k8s/default/http/secret');
  t.ok(secret !== undefined, 'the denied destination is listed');
  t.ok((secret?.callers[0]?.denied ?? 0) >= 1, 'with its denied calls');
  t.equal(secret?.callers[0]?.allowed, 0);
  const web = incoming?.destinations.find((d) => d.destination === '/#/io.l5d.k8s/default/http/web');
  t.ok((web?.callers[0]?.allowed ?? 0) >= 1);

  const deny = (await adminJson(1, '/authz/explain.json?from=default/default&to=default/secret')).json as { decision: string; reason: string; default: string };
  t.equal(deny.decision, 'deny');
  t.equal(deny.default, 'deny');
  const allow = (await adminJson(1, '/authz/explain.json?from=spiffe://hostmesh/node/node-a&to=default/web:http&method=POST&path=/v1/x')).json as {
    decision: string;
    rule: string;
  };
  t.same([allow.decision, allow.rule], ['allow', 'open-to-web']);
  t.equal((await adminJson(1, '/authz/explain.json?from=x%20y&to=default/web')).status, 400, 'a bad caller is a 400');
  t.equal((await adminJson(1, `/authz/explain.json?from=unauthenticated&to=${'a'.repeat(2000)}`)).status, 400, 'an oversized field is a 400');
});

t.test('allowDtabOverride: false -> an override is 403 DTAB_OVERRIDE_REFUSED at the outgoing router; plain calls unaffected', async (t) => {
  await setPolicy(0, policy({ overrides: false })); // the caller's node decides on overrides
  const r = await via('anything', { 'l5d-dtab': '/svc/anything => /#/io.l5d.k8s/default/http/web' });
  t.equal(r.status, 403);
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), /l5d-dtab overrides are not allowed/);
  const ctx = await via('anything', { 'l5d-ctx-dtab': '/svc/anything => /#/io.l5d.k8s/default/http/web' });
  t.equal(ctx.status, 403, 'an override sent by a pod as l5d-ctx-dtab is refused too');
  t.equal((await via('web')).status, 200);
  t.ok((await counter(0, 'hostmesh_authz_total', { router: 'outgoing', decision: 'deny' })) >= 1, 'counted as a deny at the outgoing router');
  // Left in force: the tests below send no overrides.
});

t.test('a bad policy version is rejected and counted; the policy in force stays', async (t) => {
  await setPolicy(1, 'namespaces:\n  default: dney\nrules: []\n');
  t.equal(await counter(1, 'hostmesh_policy_reload_failures_total', {}), 1);
  t.equal((await via('web')).status, 200, 'web still allowed');
  t.equal((await via('secret')).status, 403, 'secret still denied');
  // The bad file stays on disk; the next valid version replaces it.
});

t.test('policy reloads under load: zero failed requests, and a new rule applies to the next requests', async (t) => {
  let stop = false;
  let done = 0;
  const failures: string[] = [];
  const loop = async (): Promise<void> => {
    while (!stop) {
      const r = await via('web');
      done++;
      if (r.status !== 200) failures.push(`${r.status} ${String(r.headers['l5d-err'] ?? r.body)}`);
    }
  };
  const loops = Array.from({ length: 4 }, loop);
  // The destination's router (node-b) decides: its policy is swapped while requests flow.
  await setPolicy(1, policy({ extraRules: 300 }));
  await setPolicy(1, policy({ secretRule: true }));
  const secret = await via('secret');
  stop = true;
  await Promise.all(loops);
  t.same(failures, [], `${done} requests during 2 reloads, none failed`);
  t.ok(done > 50, 'the load was real');
  t.equal(secret.status, 200, 'the reloaded rule allows default/secret');
  t.equal(secret.body, 'secret-1');
  t.equal(mesh.meshes[1]?.policy?.status.applied, 2, 'both versions applied');
});
