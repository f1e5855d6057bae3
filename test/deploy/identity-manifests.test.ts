// The shipped deployment gives per-node identities by default (`kubectl apply -k k8s/`): the
// identity issuer's Deployment, Service and least-privilege RBAC; the routers' projected token
// with hostmesh's own audience and the trust bundle mount matching the config; PodSecurity labels;
// a numeric image USER; and the example policy deciding hello -> world allow for the identity the
// issued certificates deliver (hostmesh authz explain), and deny for anything else.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { runCli } from '../helpers/cli.js';
import { kustomize, one, ROOT, type Manifest } from '../helpers/manifests.js';

const base = kustomize('k8s');
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
interface Pod {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: {
    args: string[];
    ports: { name: string; containerPort: number }[];
    securityContext: Record<string, unknown>;
    volumeMounts: { name: string; mountPath: string }[];
    readinessProbe?: { httpGet: { path: string; port: string } };
  }[];
  volumes: {
    name: string;
    secret?: { secretName: string };
    configMap?: { name: string };
    projected?: { sources: { serviceAccountToken?: { path: string; audience?: string; expirationSeconds?: number } }[] };
  }[];
}
const podOf = (m: Manifest): Pod => (m as unknown as { spec: { template: { spec: Pod } } }).spec.template.spec;
const configMap = base.find((m) => m.kind === 'ConfigMap' && m.metadata.name.startsWith('hostmesh-config-')) as unknown as { data: Record<string, string> };
const shipped = parseConfig(configMap.data['config.yaml'] ?? '', '/etc/hostmesh/config.yaml', {}, () => '').config;

t.test('the issuer: a Deployment and Service the routers reach, its Secret mounted where `hostmesh identity` reads it', async (t) => {
  const deploy = one(base, 'Deployment', 'hostmesh-identity');
  const pod = podOf(deploy);
  const c = pod.containers[0];
  t.equal(c?.args[0], 'identity');
  t.equal(pod.serviceAccountName, 'hostmesh-identity', 'its own ServiceAccount');
  const mount = c?.volumeMounts.find((v) => v.name === 'issuer');
  t.equal(mount?.mountPath, '/var/run/secrets/hostmesh/issuer', "the CLI's default --issuer-cert/--issuer-key directory");
  t.equal(pod.volumes.find((v) => v.name === 'issuer')?.secret?.secretName, 'hostmesh-identity-issuer');
  t.equal(c?.readinessProbe?.httpGet.path, '/ready');
  // Restricted Pod Security: non-root, no escalation, no capabilities, RuntimeDefault seccomp.
  t.equal(pod.securityContext['runAsNonRoot'], true);
  t.same(pod.securityContext['seccompProfile'], { type: 'RuntimeDefault' });
  t.same(c?.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } });
  const svc = one(base, 'Service', 'hostmesh-identity') as unknown as {
    metadata: { namespace: string };
    spec: { ports: { port: number; targetPort: string }[] };
  };
  const url = new URL(shipped.identity?.issuer?.url ?? '');
  t.equal(url.hostname, `hostmesh-identity.${svc.metadata.namespace}.svc`, 'the routers dial the Service by name (a DNS name of the serving certificate)');
  t.equal(Number(url.port), svc.spec.ports[0]?.port);
  t.equal(c?.ports.find((p) => p.name === svc.spec.ports[0]?.targetPort)?.containerPort, 8443, "the CLI's default --port");
});

t.test('RBAC: the issuer may create TokenReviews and get pods in its namespace, nothing else; routers call neither', async (t) => {
  const cluster = one(base, 'ClusterRole', 'hostmesh-identity') as unknown as { rules: Rule[] };
  t.same(cluster.rules, [{ apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] }]);
  const role = one(base, 'Role', 'hostmesh-identity') as unknown as { metadata: { namespace: string }; rules: Rule[] };
  t.same(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }], 'one pod at a time, no list, no watch, no secrets');
  t.equal(role.metadata.namespace, 'hostmesh');
  for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
    const b = one(base, kind, 'hostmesh-identity') as unknown as { subjects: unknown[] };
    t.same(b.subjects, [{ kind: 'ServiceAccount', name: 'hostmesh-identity', namespace: 'hostmesh' }]);
  }
  const routers = one(base, 'ClusterRole', 'hostmesh') as unknown as { rules: Rule[] };
  for (const r of routers.rules) {
    t.notOk(
      r.resources.includes('tokenreviews') || r.resources.includes('secrets') || r.verbs.includes('create'),
      'routers never review tokens or read secrets',
    );
  }
});

t.test("the routers: a projected token for hostmesh's audience and the trust bundle, where the config reads them", async (t) => {
  const ds = podOf(one(base, 'DaemonSet', 'hostmesh'));
  const c = ds.containers[0];
  const tokenVolume = ds.volumes.find((v) => v.name === 'identity-token');
  const source = tokenVolume?.projected?.sources[0]?.serviceAccountToken;
  t.equal(source?.audience, 'hostmesh-identity', "hostmesh's own audience, the issuer's --audience default");
  t.ok((source?.expirationSeconds ?? 0) <= 3600, 'short-lived');
  const tokenMount = c?.volumeMounts.find((v) => v.name === 'identity-token')?.mountPath;
  t.equal(shipped.identity?.issuer?.tokenFile, `${tokenMount}/${source?.path}`);
  const trustMount = c?.volumeMounts.find((v) => v.name === 'trust-bundle')?.mountPath;
  t.equal(shipped.identity?.issuer?.trustBundle, `${trustMount}/ca-bundle.crt`);
  t.equal(ds.volumes.find((v) => v.name === 'trust-bundle')?.configMap?.name, 'hostmesh-trust-bundle');
  t.notOk(
    ds.volumes.some((v) => v.secret !== undefined),
    'no Secret on the routers: their keys are made in memory',
  );
  t.equal(shipped.identity?.trustDomain, 'cluster.local');
});

t.test('namespace Pod Security: enforce privileged (hostPort), warn and audit restricted', async (t) => {
  const ns = one(base, 'Namespace', 'hostmesh');
  t.match(ns.metadata.labels, {
    'pod-security.kubernetes.io/enforce': 'privileged',
    'pod-security.kubernetes.io/warn': 'restricted',
    'pod-security.kubernetes.io/audit': 'restricted',
  });
});

t.test("the image's USER is numeric (runAsNonRoot can check it)", async (t) => {
  const user = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('USER '))
    .at(-1);
  t.match(user, /^USER [1-9][0-9]*(:[0-9]+)?$/);
});

t.test('the example policy allows hello -> world for the identity the issued certificates deliver, and denies the rest', async (t) => {
  const policy = join(ROOT, 'k8s', 'examples', 'policy.yaml');
  // hello runs as default/default (k8s/examples/hello-world.yaml); node-a's certificate lets
  // node-b accept that claim, so the caller is the pod's identity, not the node's.
  const explain = (from: string, to: string) => runCli(['authz', 'explain', '-p', policy, '--from', from, '--to', to], {}, 60_000);
  const [hello, node, v2] = await Promise.all([
    explain('default.default.serviceaccount.identity.hostmesh.cluster.local', 'default/world:http'),
    explain('spiffe://cluster.local/node/node-a', 'default/world:http'),
    explain('default.default.serviceaccount.identity.hostmesh.cluster.local', 'default/world-v2:http'),
  ]);
  t.equal(hello.code, 0, `allow: ${hello.stdout}${hello.stderr}`);
  t.equal(node.code, 1, 'a bare node identity (claims ignored) is denied');
  t.equal(v2.code, 1, 'another service is denied');
});
