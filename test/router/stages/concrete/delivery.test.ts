// The incoming router's delivery check (router/stages/concrete/delivery.ts) on its own: which endpoints of a bound
// name are kept, with which workload, for every kind of hostile slice address; a property over
// random pods and endpoints; hostNetwork pods only when configured, and never ambiguously.

import fc from 'fast-check';
import t from 'tap';
import { parsePath } from '../../../../src/dtab/parse.js';
import { PodIndex, type PodInfo } from '../../../../src/identity/pod-directory.js';
import type { Addr, BoundName, Endpoint } from '../../../../src/namer/addr.js';
import { Var } from '../../../../src/namer/var.js';
import { deliveryCheck, type DeliveryRefusal } from '../../../../src/router/stages/concrete/delivery.js';

function podInfo(ns: string, name: string, node: string, ip: string, extra: { sa?: string; hostNetwork?: boolean } = {}): PodInfo {
  return {
    namespace: ns,
    name,
    uid: `${ns}/${name}`,
    nodeName: node,
    serviceAccount: extra.sa ?? 'default',
    ips: [ip],
    hostNetwork: extra.hostNetwork === true,
  };
}

function bound(id: string): BoundName {
  return { id: parsePath(id), residual: parsePath('/'), addr: new Var<Addr>({ kind: 'pending' }) };
}

const ep = (host: string, nodeName?: string): Endpoint => ({ host, port: 8080, meta: nodeName === undefined ? {} : { nodeName } });

function index(pods: PodInfo[]): PodIndex {
  const p = new PodIndex();
  for (const x of pods) p.upsert(x);
  p.markSynced();
  return p;
}

const PODS = [
  podInfo('a', 'a-1', 'node-a', '10.0.0.1', { sa: 'web' }),
  podInfo('b', 'b-1', 'node-a', '10.0.0.2', { sa: 'db' }),
  podInfo('a', 'a-2', 'node-b', '10.0.1.1', { sa: 'web' }),
  podInfo('a', 'host-1', 'node-a', '192.168.0.10', { sa: 'agent', hostNetwork: true }),
];

t.test('a k8s name: only known pods of this node in its namespace, carrying their workload', async (t) => {
  const refused: DeliveryRefusal[] = [];
  const check = deliveryCheck({
    nodeName: 'node-a',
    pods: index(PODS),
    k8sPrefix: '/io.l5d.k8s',
    hostNetworkPods: false,
    events: { deliveryRefused: (r) => refused.push(r) },
  });
  const r = check(
    [ep('10.0.0.1', 'node-a'), ep('10.0.0.2', 'node-a'), ep('10.0.1.1', 'node-a'), ep('192.168.0.10', 'node-a'), ep('10.9.9.9', 'node-a')],
    bound('/#/io.l5d.k8s/a/http/web'),
  );
  t.same(
    r.endpoints.map((e) => [e.host, e.meta['podNamespace'], e.meta['podName'], e.meta['serviceAccount'], e.meta.nodeName]),
    [['10.0.0.1', 'a', 'a-1', 'web', 'node-a']],
  );
  t.same(refused.sort(), ['other_namespace', 'other_node', 'unknown_pod', 'unknown_pod']);
  const none = check([ep('10.0.1.1', 'node-a')], bound('/#/io.l5d.k8s/a/http/web'));
  t.same(none.endpoints, []);
  t.match(none.why, /none of 1 endpoints is a pod of namespace a on node node-a \(1 a pod of another node\)/, 'a lying nodeName is not believed');
});

t.test('names of other namers (operator-written files) keep the nodeName rule', async (t) => {
  const check = deliveryCheck({ nodeName: 'node-a', pods: index(PODS), k8sPrefix: '/io.l5d.k8s', hostNetworkPods: false });
  const r = check([ep('127.0.0.3', 'node-a'), ep('127.0.0.4', 'node-b')], bound('/#/io.l5d.fs/world'));
  t.same(
    r.endpoints.map((e) => e.host),
    ['127.0.0.3'],
  );
});

t.test('hostNetworkPods: true delivers to the one service account of the namespace on that address; two are ambiguous', async (t) => {
  const check = (pods: PodInfo[]) => deliveryCheck({ nodeName: 'node-a', pods: index(pods), k8sPrefix: '/io.l5d.k8s', hostNetworkPods: true });
  const one = check(PODS)([ep('192.168.0.10', 'node-a')], bound('/#/io.l5d.k8s/a/http/agent'));
  t.same(
    one.endpoints.map((e) => [e.meta['podName'], e.meta['serviceAccount']]),
    [['host-1', 'agent']],
  );
  const otherNs = check(PODS)([ep('192.168.0.10', 'node-a')], bound('/#/io.l5d.k8s/b/http/agent'));
  t.same(otherNs.endpoints, [], "another namespace's name does not reach a's hostNetwork pod");
  const two = check([...PODS, podInfo('a', 'host-2', 'node-a', '192.168.0.10', { sa: 'other', hostNetwork: true })]);
  const amb = two([ep('192.168.0.10', 'node-a')], bound('/#/io.l5d.k8s/a/http/agent'));
  t.same(amb.endpoints, []);
  t.match(amb.why, /hostNetwork pods of more than one service account/);
  const offNode = check([podInfo('a', 'host-b', 'node-b', '192.168.0.11', { sa: 'agent', hostNetwork: true })]);
  t.same(offNode([ep('192.168.0.11', 'node-a')], bound('/#/io.l5d.k8s/a/http/agent')).endpoints, [], 'another node');
});

t.test('property: every endpoint kept is a known, non-hostNetwork pod of this node in the name namespace', async (t) => {
  const arbPod = fc.record({
    ns: fc.constantFrom('a', 'b'),
    node: fc.constantFrom('node-a', 'node-b'),
    ip: fc.integer({ min: 1, max: 12 }).map((n) => `10.0.0.${n}`),
    hostNetwork: fc.boolean(),
  });
  fc.assert(
    fc.property(
      fc.array(arbPod, { maxLength: 10 }),
      fc.array(fc.record({ ip: fc.integer({ min: 1, max: 14 }).map((n) => `10.0.0.${n}`), node: fc.constantFrom('node-a', 'node-b') }), { maxLength: 10 }),
      fc.constantFrom('a', 'b'),
      (pods, endpoints, ns) => {
        const idx = index(pods.map((p, i) => podInfo(p.ns, `p${i}`, p.node, p.ip, { hostNetwork: p.hostNetwork })));
        let refusals = 0;
        const check = deliveryCheck({
          nodeName: 'node-a',
          pods: idx,
          k8sPrefix: '/io.l5d.k8s',
          hostNetworkPods: false,
          events: { deliveryRefused: () => refusals++ },
        });
        const r = check(
          endpoints.map((e) => ep(e.ip, e.node)),
          bound(`/#/io.l5d.k8s/${ns}/http/svc`),
        );
        for (const e of r.endpoints) {
          const p = idx.byIp(e.host);
          if (p === undefined || p.nodeName !== 'node-a' || p.namespace !== ns || p.hostNetwork) return false;
          if (e.meta['serviceAccount'] !== p.serviceAccount || e.meta['podName'] !== p.name) return false;
        }
        return r.endpoints.length + refusals === endpoints.length;
      },
    ),
  );
  t.pass('held');
});

t.test('the same endpoint asked again: the same workload while the pod stays, the new one once the address changes hands', async (t) => {
  const pods = index(PODS);
  const check = deliveryCheck({ nodeName: 'node-a', pods, k8sPrefix: '/io.l5d.k8s', hostNetworkPods: false });
  const name = bound('/#/io.l5d.k8s/a/http/web');
  const e = ep('10.0.0.1', 'node-a');
  const first = check([e], name).endpoints[0];
  t.equal(check([e], name).endpoints[0], first, 'asked again, the endpoint made for it is reused (no copy per request)');
  t.same(e.meta, { nodeName: 'node-a' }, "the namer's endpoint is not touched");
  // The pod is replaced: the address now belongs to another pod of the namespace, with another service account.
  pods.delete('a', 'a-1');
  pods.upsert(podInfo('a', 'a-9', 'node-a', '10.0.0.1', { sa: 'batch' }));
  const after = check([e], name).endpoints[0];
  t.same([after?.meta['podName'], after?.meta['serviceAccount']], ['a-9', 'batch'], 'the new pod is who answers now');
  pods.delete('a', 'a-9');
  t.same(check([e], name).endpoints, [], 'and once no pod owns it, it is refused');
  const other = check([e], bound('/#/io.l5d.k8s/b/http/db'));
  t.same(other.endpoints, [], 'the namespace is read per bound name');
});
