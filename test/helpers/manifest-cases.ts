// The deploy path as a user takes it: every manifest rendered by the real `kubectl kustomize`
// (base, overlays, certs-sample, the example), validated against the Kubernetes schemas
// (kubernetes-models), no removed API versions, and consistent with the code: the ports the
// config listens on, the files the DaemonSet mounts, the Service the daemonset transformer
// resolves, the probes the admin server answers, the drain time, the Dockerfile's entrypoint.
// test/deploy/manifests.test.ts runs this file when kubectl is installed (helpers/requires.ts).

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import type { HostmeshConfig } from '../../src/config/types.js';
import { runCertsInProcess, runCli, runInProcess, type CliResult } from '../helpers/cli.js';
import { runCheck } from '../../src/cli/run.js';
import { kustomize, manifestFile, one, ROOT, type Manifest } from '../helpers/manifests.js';
import { staticTlsConfig } from '../helpers/static-tls-config.js';

// API versions Kubernetes has removed (the old Linkerd 1 examples used several of them).
const REMOVED = new Set([
  'extensions/v1beta1',
  'apps/v1beta1',
  'apps/v1beta2',
  'rbac.authorization.k8s.io/v1beta1',
  'rbac.authorization.k8s.io/v1alpha1',
  'scheduling.k8s.io/v1beta1',
  'scheduling.k8s.io/v1alpha1',
  'discovery.k8s.io/v1beta1',
  'policy/v1beta1',
  'networking.k8s.io/v1beta1',
  'batch/v1beta1',
  'autoscaling/v2beta1',
  'autoscaling/v2beta2',
  'storage.k8s.io/v1beta1',
  'certmanager.k8s.io/v1alpha1',
  'cert-manager.io/v1alpha2',
]);

async function validate(m: Manifest): Promise<void> {
  // kubernetes-models ships one class per kind under its group/version path (core is `v1`).
  const mod = (await import(`kubernetes-models/${m.apiVersion}`)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Kind = mod[m.kind];
  if (Kind === undefined) throw new Error(`kubernetes-models has no ${m.apiVersion} ${m.kind}`);
  new Kind(m).validate();
}

const base = kustomize('k8s');
const hostNetwork = kustomize('k8s/overlays/host-network');
const certManager = kustomize('k8s/overlays/cert-manager');
const sample = kustomize('certs-sample');
const example = manifestFile('k8s/examples/hello-world.yaml');

interface Container {
  name: string;
  args: string[];
  env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number; hostPort?: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown> & { capabilities: { drop: string[] } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  hostNetwork?: boolean;
  dnsPolicy?: string;
  serviceAccountName: string;
  priorityClassName: string;
  terminationGracePeriodSeconds: number;
  tolerations: { operator: string }[];
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
}
const podSpec = (list: readonly Manifest[]): PodSpec =>
  (one(list, 'DaemonSet', 'hostmesh') as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const container = (list: readonly Manifest[]): Container => podSpec(list).containers[0] as Container;
const configMaps = base.filter((m) => m.kind === 'ConfigMap') as unknown as (Manifest & { data: Record<string, string> })[];
const configMap = configMaps.find((m) => m.metadata.name.startsWith('hostmesh-config-')) as Manifest & { data: Record<string, string> };
const policyMap = one(base, 'ConfigMap', 'hostmesh-policy') as unknown as Manifest & { data: Record<string, string> };

// The config as the DaemonSet gets it: the ConfigMap's config.yaml, its dtabFiles read from the ConfigMap.
const files = new Map<string, string>();
const mount = container(base).volumeMounts.find((v) => v.name === 'config');
for (const [key, text] of Object.entries(configMap.data)) files.set(`${mount?.mountPath}/${key}`, text);
const shipped: HostmeshConfig = parseConfig(configMap.data['config.yaml'] ?? '', '/etc/hostmesh/config.yaml', {}, (p) => {
  const text = files.get(p);
  if (text === undefined) throw new Error(`no ConfigMap key mounted at ${p}`);
  return text;
}).config;

t.test('every rendered manifest validates against the Kubernetes schemas and uses no removed API', async (t) => {
  for (const [name, list] of [
    ['k8s/', base],
    ['overlays/host-network', hostNetwork],
    ['overlays/cert-manager', certManager],
    ['certs-sample/', sample],
    ['examples/hello-world.yaml', example],
  ] as const) {
    t.ok(list.length > 0, `${name} renders`);
    for (const m of list) {
      t.notOk(REMOVED.has(m.apiVersion), `${name} ${m.kind}/${m.metadata.name}: ${m.apiVersion} is served`);
      if (m.apiVersion.startsWith('cert-manager.io/')) continue; // a CRD: checked by shape below
      // kustomize wraps base64 Secret data in lines; the API server's decoder skips newlines, the
      // schema's "byte" format does not, so compare the value the server would decode.
      if (m.kind === 'Secret')
        for (const [k, v] of Object.entries((m['data'] ?? {}) as Record<string, string>)) (m['data'] as Record<string, string>)[k] = v.replace(/\s+/g, '');
      await t.resolves(validate(m), `${name} ${m.kind}/${m.metadata.name} is a valid ${m.apiVersion} ${m.kind}`);
    }
  }
  t.same(base.map((m) => m.kind).sort(), [
    'ClusterRole',
    'ClusterRole',
    'ClusterRoleBinding',
    'ClusterRoleBinding',
    'ConfigMap',
    'ConfigMap',
    'DaemonSet',
    'Deployment',
    'Namespace',
    'PriorityClass',
    'Role',
    'RoleBinding',
    'Service',
    'Service',
    'ServiceAccount',
    'ServiceAccount',
  ]);
  for (const m of base)
    if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PriorityClass'].includes(m.kind))
      t.equal(m.metadata.namespace, 'hostmesh', `${m.kind} in namespace hostmesh`);
});

t.test('a schema violation is caught (the validation can fail)', async (t) => {
  const broken = structuredClone(one(base, 'DaemonSet')) as unknown as {
    spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } };
  };
  broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'outgoing';
  await t.rejects(validate(broken as unknown as Manifest), /containerPort/);
});

t.test('DaemonSet ports match the config: 4140 and 4141 on the host, admin only in the pod', async (t) => {
  const c = container(base);
  const port = (name: string) => c.ports.find((p) => p.name === name);
  const outgoing = shipped.routers.find((r) => r.label === 'outgoing');
  const incoming = shipped.routers.find((r) => r.label === 'incoming');
  t.equal(outgoing?.servers[0]?.port, 4140);
  t.equal(incoming?.servers[0]?.port, 4141);
  t.same(port('outgoing'), { name: 'outgoing', containerPort: outgoing?.servers[0]?.port, hostPort: 4140, protocol: 'TCP' });
  t.same(port('incoming'), { name: 'incoming', containerPort: incoming?.servers[0]?.port, hostPort: 4141, protocol: 'TCP' });
  t.equal(port('admin')?.containerPort, shipped.admin.port);
  t.equal(port('admin')?.hostPort, undefined, 'the admin port is not opened on the node');
  t.ok(incoming?.servers[0]?.tls?.requireClientAuth, 'the incoming port is mutual TLS only');
  t.equal(outgoing?.servers[0]?.tls, undefined, 'the outgoing port takes plaintext from pods');
});

t.test('ConfigMap keys are the files the config and the entrypoint read; TLS from issued node certificates and the trust bundle', async (t) => {
  const c = container(base);
  const spec = podSpec(base);
  t.same(c.args, ['run', '-c', '/etc/hostmesh/config.yaml']);
  t.equal(mount?.mountPath, '/etc/hostmesh');
  t.equal(
    spec.volumes.find((v) => v.name === 'config')?.configMap?.name,
    configMap.metadata.name,
    'the DaemonSet mounts the generated ConfigMap (hash-suffixed name)',
  );
  t.match(configMap.metadata.name, /^hostmesh-config-[a-z0-9]{10}$/, 'a content hash in the name: a change rolls the DaemonSet');
  for (const r of shipped.routers) t.ok(r.dtabFile !== undefined && files.has(r.dtabFile), `router ${r.label} dtabFile ${r.dtabFile} is a ConfigMap key`);
  // TLS: the node certificate from identity.issuer (no files); the trust bundle from its ConfigMap.
  const trustMount = c.volumeMounts.find((v) => v.name === 'trust-bundle')?.mountPath;
  t.equal(spec.volumes.find((v) => v.name === 'trust-bundle')?.configMap?.name, 'hostmesh-trust-bundle');
  t.equal(shipped.identity?.issuer?.trustBundle, `${trustMount}/ca-bundle.crt`, 'identity.issuer.trustBundle is the ConfigMap key ca-bundle.crt');
  for (const r of shipped.routers) {
    for (const s of r.servers) if (s.tls) t.same([s.tls.certPath, s.tls.keyPath, s.tls.caCertPath], [undefined, undefined, `${trustMount}/ca-bundle.crt`]);
    if (r.client.tls) t.same([r.client.tls.clientAuth, r.client.tls.trustCerts], [undefined, [`${trustMount}/ca-bundle.crt`]]);
  }
  // Every way of making the issuer's Secret and the bundle gives those names and keys.
  const sampleSecret = one(sample, 'Secret', 'hostmesh-identity-issuer') as unknown as {
    type: string;
    data: Record<string, string>;
    metadata: { namespace: string };
  };
  t.same(Object.keys(sampleSecret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
  t.equal(sampleSecret.metadata.namespace, 'hostmesh');
  t.equal(sampleSecret.type, 'kubernetes.io/tls');
  t.same(Object.keys((one(sample, 'ConfigMap', 'hostmesh-trust-bundle') as unknown as { data: Record<string, string> }).data), ['ca-bundle.crt']);
  for (const m of [...base, ...hostNetwork, ...certManager]) t.not(m.kind, 'Secret', 'no private key is shipped in k8s/');
});

t.test(
  'the authorization policy: its own ConfigMap, mounted as a directory where authz.policyFile points, hot reloadable; shipped policies are valid',
  async (t) => {
    const c = container(base);
    const spec = podSpec(base);
    const file = shipped.authz?.policyFile ?? '';
    const policyMount = c.volumeMounts.find((v) => v.name === 'policy');
    t.equal(
      spec.volumes.find((v) => v.name === 'policy')?.configMap?.name,
      'hostmesh-policy',
      'no hash suffix: an edit of the live ConfigMap is reloaded, not rolled out',
    );
    t.equal(policyMount?.readOnly, true);
    t.equal(`${policyMount?.mountPath}/policy.yaml`, file, 'authz.policyFile is the ConfigMap key policy.yaml');
    t.notOk(
      c.volumeMounts.some((v) => v !== policyMount && file.startsWith(`${v.mountPath}/`)),
      'not under another mount (a read-only ConfigMap volume cannot hold a mount point)',
    );
    t.same(Object.keys(policyMap.data), ['policy.yaml']);
    const { parsePolicy } = await import('../../src/authz/parse-policy.js');
    const shippedPolicy = parsePolicy(policyMap.data['policy.yaml'] ?? '', 'policy.yaml');
    t.equal(shippedPolicy.ruleCount, 0);
    t.equal(shippedPolicy.namespaceDefault('default'), 'allow', 'the base policy allows everything, as hostmesh without a policy');
    const example = parsePolicy(readFileSync(join(ROOT, 'k8s', 'examples', 'policy.yaml'), 'utf8'), 'k8s/examples/policy.yaml');
    t.equal(example.namespaceDefault('default'), 'deny', 'the hello-world sample is deny-by-default');
  },
);

t.test('the h2 routers (4240/4241, Linkerd 1 servicemesh.yml ports) are on the host and in the headless Service', async (t) => {
  const c = container(base);
  const port = (name: string) => c.ports.find((p) => p.name === name);
  const h2out = shipped.routers.find((r) => r.label === 'h2-outgoing');
  const h2in = shipped.routers.find((r) => r.label === 'h2-incoming');
  t.equal(h2out?.protocol, 'h2');
  t.equal(h2in?.protocol, 'h2');
  t.same(port('h2-outgoing'), { name: 'h2-outgoing', containerPort: h2out?.servers[0]?.port, hostPort: 4240, protocol: 'TCP' });
  t.same(port('h2-incoming'), { name: 'h2-incoming', containerPort: h2in?.servers[0]?.port, hostPort: 4241, protocol: 'TCP' });
  const ds = h2out?.transformers.find((x) => x.kind === 'io.l5d.k8s.daemonset') as { port: string; service: string } | undefined;
  const svc = one(base, 'Service', ds?.service) as unknown as Manifest & { spec: { ports: { name: string; port: number; targetPort: string }[] } };
  t.same(
    svc.spec.ports.find((x) => x.name === ds?.port),
    { name: 'h2-incoming', port: 4241, targetPort: 'h2-incoming', protocol: 'TCP' },
  );
  t.equal(h2in?.servers[0]?.tls?.requireClientAuth, true, 'mutual TLS between routers');
});

t.test('dtab files shipped in the ConfigMap are the ones in dtab/', async (t) => {
  for (const name of ['outgoing.dtab', 'incoming.dtab', 'h2-outgoing.dtab', 'h2-incoming.dtab']) {
    const source = readFileSync(join(ROOT, 'dtab', name), 'utf8');
    t.equal(readFileSync(join(ROOT, 'k8s', 'base', 'config', name), 'utf8'), source, `k8s/base/config/${name} == dtab/${name}`);
    t.equal(configMap.data[name], source);
  }
});

t.test('the daemonset transformer resolves the headless Service; nothing exposes port 4140', async (t) => {
  const outgoing = shipped.routers.find((r) => r.label === 'outgoing');
  const ds = outgoing?.transformers.find((x) => x.kind === 'io.l5d.k8s.daemonset') as { namespace: string; port: string; service: string } | undefined;
  t.ok(ds, 'outgoing uses the daemonset transformer');
  const svc = one(base, 'Service', ds?.service) as unknown as Manifest & {
    spec: { clusterIP: string; type?: string; ports: { name: string; port: number; targetPort: string | number }[] };
  };
  t.equal(svc.metadata.namespace, ds?.namespace);
  t.equal(svc.spec.clusterIP, 'None', 'headless');
  const p = svc.spec.ports.find((x) => x.name === ds?.port);
  t.equal(p?.targetPort, 'incoming');
  t.equal(p?.port, 4141);
  t.same(svc.spec.ports.map((x) => x.name).sort(), ['admin', 'h2-incoming', 'incoming']);
  for (const list of [base, hostNetwork, certManager, example]) {
    for (const s of list.filter((m) => m.kind === 'Service') as unknown as {
      metadata: { name: string };
      spec: { type?: string; ports: { port: number; targetPort?: unknown }[] };
    }[]) {
      t.notOk(['LoadBalancer', 'NodePort'].includes(s.spec.type ?? 'ClusterIP'), `${s.metadata.name} is not exposed outside the cluster`);
      for (const port of s.spec.ports) {
        t.not(port.port, 4140, `${s.metadata.name} does not expose 4140`);
        t.notOk(port.targetPort === 4140 || port.targetPort === 'outgoing', `${s.metadata.name} does not target the outgoing port`);
      }
    }
  }
});

t.test('DaemonSet: rolling update, every node, priority, drain time, downward API, probes, limits, hardening', async (t) => {
  const ds = one(base, 'DaemonSet') as unknown as { spec: { updateStrategy: { type: string; rollingUpdate: { maxUnavailable: number } } } };
  t.same(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  const spec = podSpec(base);
  const c = container(base);
  t.same(spec.tolerations, [{ operator: 'Exists' }], 'tolerates every taint: one router per node');
  t.equal(one(base, 'PriorityClass', spec.priorityClassName).metadata.name, spec.priorityClassName, 'the priority class it names is shipped');
  t.ok(
    spec.terminationGracePeriodSeconds * 1000 > (shipped.drainAnnounceMs ?? 0) + shipped.shutdownGraceMs,
    `grace ${spec.terminationGracePeriodSeconds}s > announce ${shipped.drainAnnounceMs}ms + drain ${shipped.shutdownGraceMs}ms`,
  );
  t.equal(shipped.drainAnnounceMs, 2000, 'the shipped config names its announce (the default, written down)');
  t.ok(spec.terminationGracePeriodSeconds * 1000 <= (shipped.drainAnnounceMs ?? 0) + shipped.shutdownGraceMs + 10_000, 'and not much longer');
  const env = (name: string) => c.env.find((e) => e.name === name);
  t.equal(env('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', 'localnode/daemonset learn the node name');
  t.equal(env('POD_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
  t.equal(env('HOST_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.hostIP');
  // glibc's allocator setting (docs/memory.md, session 7): the image and the DaemonSet agree.
  const imageArenas = /^ENV MALLOC_ARENA_MAX=(\S+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
  t.equal(env('MALLOC_ARENA_MAX')?.value, imageArenas, 'MALLOC_ARENA_MAX: the same in the DaemonSet and the image');
  t.same(
    [c.readinessProbe.httpGet, c.livenessProbe.httpGet],
    [
      { path: '/ready', port: 'admin' },
      { path: '/admin/ping', port: 'admin' },
    ],
  );
  t.ok(c.resources.requests['cpu'] && c.resources.requests['memory'] && c.resources.limits['memory']);
  t.equal(c.resources.limits['cpu'], undefined, 'no CPU limit: a throttled router delays every pod on its node (one core capped ~10k req/s)');
  t.ok(Number.parseInt(c.resources.requests['memory'] ?? '', 10) >= 192, 'the memory request covers a loaded router (100-190 MB measured)');
  t.same(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } });
  t.equal(spec.securityContext['runAsNonRoot'], true);
  t.not(spec.securityContext['runAsUser'], 0);
  t.equal(spec.serviceAccountName, 'hostmesh', 'its own ServiceAccount, not default');
  t.ok(
    c.volumeMounts.every((v) => v.readOnly === true || v.name === 'tmp'),
    'config and certificates are mounted read-only',
  );
  // NODE_OPTIONS must be something node accepts there (some V8 flags are refused in NODE_OPTIONS).
  const nodeOptions = env('NODE_OPTIONS')?.value;
  if (nodeOptions !== undefined) {
    const r = await import('node:child_process').then((cp) =>
      cp.spawnSync(process.execPath, ['-e', '0'], { env: { ...process.env, NODE_OPTIONS: nodeOptions } }),
    );
    t.equal(r.status, 0, `node accepts NODE_OPTIONS=${nodeOptions}`);
  }
});

t.test('RBAC: its own ServiceAccount bound to a read-only role on Services and EndpointSlices', async (t) => {
  const role = one(base, 'ClusterRole', 'hostmesh') as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
  const binding = one(base, 'ClusterRoleBinding', 'hostmesh') as unknown as {
    roleRef: { kind: string; name: string };
    subjects: { kind: string; name: string; namespace: string }[];
  };
  t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'hostmesh' });
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'hostmesh', namespace: 'hostmesh' }]);
  one(base, 'ServiceAccount', 'hostmesh');
  for (const rule of role.rules) {
    t.same(rule.verbs, ['list', 'watch'], 'read only; the namer never writes');
    t.notOk(rule.resources.includes('*') || rule.apiGroups.includes('*') || rule.resources.includes('secrets'), 'no wildcards, no secrets');
  }
  // That these are exactly the calls the router makes is checked against the test API server in
  // test/deploy/shipped-config.test.ts.
});

t.test('host-network overlay: node network, DNS kept, outgoing bound to the node IP only', async (t) => {
  const spec = podSpec(hostNetwork);
  t.equal(spec.hostNetwork, true);
  t.equal(spec.dnsPolicy, 'ClusterFirstWithHostNet');
  const c = container(hostNetwork);
  t.same(c.args, ['run', '-c', '/etc/hostmesh/config.yaml', '--set', 'routers.0.servers.0.ip=$(HOST_IP)']);
  t.ok(
    c.env.some((e) => e.name === 'HOST_IP'),
    '$(HOST_IP) is defined, so Kubernetes expands it',
  );
  for (const p of c.ports) if (p.hostPort !== undefined) t.equal(p.hostPort, p.containerPort, 'hostNetwork needs hostPort == containerPort');
});

t.test('cert-manager overlay: a trust anchor issuing the Secret the identity issuer mounts, rotated', async (t) => {
  const certs = certManager.filter((m) => m.kind === 'Certificate') as unknown as {
    metadata: { name: string; namespace: string };
    spec: Record<string, unknown> & { issuerRef: { name: string; kind: string }; secretName: string };
  }[];
  const issuers = new Set(certManager.filter((m) => m.kind === 'Issuer').map((m) => m.metadata.name));
  for (const c of certs) {
    t.ok(issuers.has(c.spec.issuerRef.name), `${c.metadata.name} names an Issuer that is shipped`);
    t.equal(c.metadata.namespace, 'hostmesh');
  }
  const issuerSecret = (
    one(certManager, 'Deployment', 'hostmesh-identity') as unknown as { spec: { template: { spec: PodSpec } } }
  ).spec.template.spec.volumes.find((v) => v.name === 'issuer')?.secret?.secretName;
  const issuerCert = certs.find((c) => c.spec.secretName === issuerSecret);
  t.ok(issuerCert, 'a Certificate writes the Secret the identity issuer mounts');
  t.equal(issuerCert?.spec['isCA'], true, 'the issuer signs node certificates: a CA');
  t.same(issuerCert?.spec['privateKey'], { algorithm: 'RSA', size: 2048, rotationPolicy: 'Always' }, 'RSA (node-forge signs RSA), a new key each renewal');
  t.ok(issuerCert?.spec['renewBefore'], 'renewed before it expires');
  const ca = certs.find((c) => c.spec['isCA'] === true);
  t.ok(ca, 'a CA certificate backs the CA issuer');
});

t.test('the example reaches the router through status.hostIP and names Services the dtab resolves', async (t) => {
  const hello = one(example, 'Deployment', 'hello') as unknown as { spec: { template: { spec: { containers: Container[] } } } };
  const env = hello.spec.template.spec.containers[0]?.env ?? [];
  t.equal(env.find((e) => e.name === 'HOST_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.hostIP');
  t.equal(env.find((e) => e.name === 'http_proxy')?.value, 'http://$(HOST_IP):4140');
  t.ok(
    env.findIndex((e) => e.name === 'HOST_IP') < env.findIndex((e) => e.name === 'http_proxy'),
    'HOST_IP is defined before use ($(VAR) expansion is in order)',
  );
  t.match(env.find((e) => e.name === 'NO_PROXY')?.value, /kubernetes\.default\.svc/);
  // The outgoing dtab names /#/io.l5d.k8s/default/http/<host>: Service in default, port named http.
  const r = await runCli(['delegate', '--dtab-file', join(ROOT, 'dtab', 'outgoing.dtab'), '/svc/world']);
  t.match(r.stdout, /\/#\/io\.l5d\.k8s\/default\/http\/world/);
  for (const name of ['world', 'world-v2']) {
    const svc = one(example, 'Service', name) as unknown as { metadata: { namespace: string }; spec: { ports: { name: string }[] } };
    t.equal(svc.metadata.namespace, 'default');
    t.ok(
      svc.spec.ports.some((p) => p.name === 'http'),
      `${name} has a port named http`,
    );
  }
});

t.test('Dockerfile: multi-stage, Node LTS, non-root, no HEALTHCHECK, entrypoint = the DaemonSet command', async (t) => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));
  t.ok(froms.length >= 2, 'multi-stage');
  t.match(froms.at(-1), /^FROM node:(20|22|24)-[a-z-]+$/, 'runtime on an official Node LTS image');
  const user = lines.filter((l) => l.startsWith('USER ')).at(-1);
  t.ok(user && !/USER (root|0)\b/.test(user), `runs as ${user}`);
  t.notOk(/^HEALTHCHECK/m.test(text));
  const entry = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(text)?.[1] ?? '[]') as string[];
  const cmd = JSON.parse(/^CMD (.*)$/m.exec(text)?.[1] ?? '[]') as string[];
  t.equal(entry[0], 'node');
  t.equal(entry.at(-1), '/app/dist/src/cli/main.js', 'the compiled CLI (tsconfig.build.json emits src/cli/main.ts there)');
  // V8's heap settings (docs/memory.md, session 9): flags only, each one node accepts.
  const flags = entry.slice(1, -1);
  t.ok(
    flags.every((f) => /^--[a-z0-9-]+=\d+$/.test(f)),
    `node flags only: ${flags.join(' ')}`,
  );
  const cp = await import('node:child_process');
  const r = cp.spawnSync(process.execPath, [...flags, '-e', '0'], { env: { ...process.env, NODE_OPTIONS: '' }, encoding: 'utf8' });
  t.equal(r.status, 0, `node accepts ${flags.join(' ')}: ${r.stderr}`);
  t.same(cmd, container(base).args, 'the image default command is what the DaemonSet runs');
  t.match(readFileSync(join(ROOT, '.dockerignore'), 'utf8'), /^node_modules$/m);
});

t.test('the shipped config passes `hostmesh run --check` with only the in-cluster paths overridden', async (t) => {
  const c = container(base);
  const sampleDir = join(ROOT, 'certs-sample');
  // A mesh certificate from the sample anchor, as a user managing files makes it.
  const meshCert = mkdtempSync(join(tmpdir(), 'hostmesh-mesh-cert-'));
  const issued = await runCertsInProcess(['certs', 'issue', '--ca-dir', sampleDir, '--out', meshCert, '--force']);
  t.equal(issued.code, 0, issued.stderr);
  const sets = [
    `routers.0.dtabFile=${join(ROOT, 'k8s/base/config/outgoing.dtab')}`,
    `routers.1.dtabFile=${join(ROOT, 'k8s/base/config/incoming.dtab')}`,
    `routers.0.client.tls.trustCerts.0=${sampleDir}/ca.crt`,
    `routers.0.client.tls.clientAuth.certPath=${meshCert}/tls.crt`,
    `routers.0.client.tls.clientAuth.keyPath=${meshCert}/tls.key`,
    `routers.1.servers.0.tls.certPath=${meshCert}/tls.crt`,
    `routers.1.servers.0.tls.keyPath=${meshCert}/tls.key`,
    `routers.1.servers.0.tls.caCertPath=${sampleDir}/ca.crt`,
    // The h2 routers (4240/4241): the same files.
    `routers.2.dtabFile=${join(ROOT, 'k8s/base/config/h2-outgoing.dtab')}`,
    `routers.3.dtabFile=${join(ROOT, 'k8s/base/config/h2-incoming.dtab')}`,
    `routers.2.client.tls.trustCerts.0=${sampleDir}/ca.crt`,
    `routers.2.client.tls.clientAuth.certPath=${meshCert}/tls.crt`,
    `routers.2.client.tls.clientAuth.keyPath=${meshCert}/tls.key`,
    `routers.3.servers.0.tls.certPath=${meshCert}/tls.crt`,
    `routers.3.servers.0.tls.keyPath=${meshCert}/tls.key`,
    `routers.3.servers.0.tls.caCertPath=${sampleDir}/ca.crt`,
    // The policy ConfigMap's file, where the DaemonSet mounts it (--check parses it like run).
    `authz.policyFile=${join(ROOT, 'k8s/base/config/policy.yaml')}`,
  ];
  const set = sets.flatMap((s) => ['--set', s]);
  const args = c.args.map((a) => (a === '/etc/hostmesh/config.yaml' ? staticTlsConfig(mkdtempSync(join(tmpdir(), 'hostmesh-check-'))) : a));
  // NODE_NAME as the DaemonSet's downward API sets it: --check builds the localnode transformer too.
  const env = { NODE_NAME: 'node-1' };
  // The DaemonSet's own command line through the binary; the other cases call runCheck in-process
  // (what `run --check` calls) on the same config file, started together with it.
  const configFile = args[args.findIndex((a) => a === '-c' || a === '--config') + 1] as string;
  const check = (extra: string[], checkEnv: NodeJS.ProcessEnv): Promise<CliResult> =>
    runInProcess((io) => runCheck(configFile, [...sets, ...extra], io, checkEnv));
  const [ok, unnamed, hn, wrongKey] = await Promise.all([
    runCli([...args, '--check', ...set], env),
    check([], process.env),
    // The host-network overlay's extra --set is a valid path too.
    check(['routers.0.servers.0.ip=10.1.2.3'], { ...process.env, ...env }),
    // A certificate from another CA is caught at check time, not at the first handshake.
    check([`routers.1.servers.0.tls.keyPath=${sampleDir}/ca.key`], { ...process.env, ...env }),
  ]);
  t.equal(unnamed.code, 1, 'without a node name the incoming router cannot be built');
  t.match(unnamed.stderr, /router incoming: io\.l5d\.k8s\.localnode needs the node name/);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /ok \(4 router\(s\): outgoing, incoming, h2-outgoing, h2-incoming\)/);
  t.equal(hn.code, 0, hn.stderr);
  t.equal(wrongKey.code, 1);
  t.match(wrongKey.stderr, /router incoming server :4141 tls/);
});
