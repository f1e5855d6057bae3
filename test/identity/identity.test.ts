// Source admission on the outgoing port and node-attested workload claims, against the test API
// server's pods (real list/watch): local pods in, other nodes' pods and strangers out, a new pod
// waits for the watch, forged claims (other node, other service account, unknown pod) refused.

import t from 'tap';
import fc from 'fast-check';
import { K8sClient, type KObject } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { silentLogger } from '../../src/log.js';
import { PodIndex, WatchedPods, normalizeIp, podInfo, type PodInfo } from '../../src/identity/pod-directory.js';
import { RefusalLog, SourceGuard, parseCidr, type Admission } from '../../src/identity/source-guard.js';
import { CLAIM_HEADER, attestedNode, checkClaim, claimFor, workloadIdentity } from '../../src/identity/workload-identity.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { until } from '../helpers/k8s.js';

function pod(name: string, node: string, ip: string, extra: { ns?: string; sa?: string; hostNetwork?: boolean; phase?: string; ip6?: string } = {}): KObject {
  return {
    kind: 'Pod',
    metadata: { name, namespace: extra.ns ?? 'default' },
    spec: { nodeName: node, serviceAccountName: extra.sa ?? 'default', ...(extra.hostNetwork ? { hostNetwork: true } : {}) },
    status: { phase: extra.phase ?? 'Running', podIP: ip, podIPs: [{ ip }, ...(extra.ip6 ? [{ ip: extra.ip6 }] : [])] },
  };
}

/** Manual timers: tests move time, never sleep for it. */
function manualClock() {
  let now = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => now,
    schedule: (ms: number, fn: () => void) => {
      const timer = { at: now + ms, fn, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    advance(ms: number) {
      now += ms;
      for (const timer of timers) {
        if (timer.live && timer.at <= now) {
          timer.live = false;
          timer.fn();
        }
      }
    },
  };
}

t.test('podInfo keeps what identity needs; finished pods hold no IP; IPv4-mapped IPv6 is one address', async (t) => {
  t.same(podInfo(pod('a', 'n1', '10.0.0.5', { ns: 'web', sa: 'front', ip6: 'FD00::5' })), {
    namespace: 'web',
    name: 'a',
    uid: '',
    nodeName: 'n1',
    serviceAccount: 'front',
    ips: ['10.0.0.5', 'fd00::5'],
    hostNetwork: false,
  });
  t.same(podInfo(pod('b', 'n1', '10.0.0.6', { phase: 'Succeeded' })).ips, [], 'a completed pod gives its IP up');
  t.equal(podInfo({ metadata: { name: 'c' } }).serviceAccount, 'default');
  t.equal(normalizeIp('::ffff:10.1.2.3'), '10.1.2.3');
});

t.test('the index: an IP moves to a new pod; deleting the old pod does not drop the new owner', async (t) => {
  const idx = new PodIndex();
  idx.upsert(podInfo(pod('old', 'n1', '10.0.0.9')));
  idx.upsert(podInfo(pod('new', 'n2', '10.0.0.9')));
  idx.delete('default', 'old');
  t.equal(idx.byIp('10.0.0.9')?.name, 'new');
  idx.upsert(podInfo(pod('hn', 'n1', '192.168.1.10', { hostNetwork: true })));
  t.equal(idx.byIp('192.168.1.10'), undefined, 'a hostNetwork pod does not own the node address');
  t.equal(idx.byName('default', 'hn')?.hostNetwork, true);
});

t.test('source guard: local pods, node addresses, loopback and CIDRs in; others out', async (t) => {
  const clock = manualClock();
  const pods = new PodIndex();
  pods.upsert(podInfo(pod('mine', 'n1', '10.0.1.5', { sa: 'app' })));
  pods.upsert(podInfo(pod('theirs', 'n2', '10.0.2.5')));
  pods.markSynced();
  const guard = new SourceGuard({
    nodeName: 'n1',
    pods,
    nodeAddresses: () => ['192.168.1.10'],
    extraCidrs: ['172.16.0.0/12', 'fd00:1::/32'],
    clock,
  });
  const sync = (ip: string): Admission => {
    const a = guard.admit(ip);
    if (a instanceof Promise) throw new Error(`${ip} should be decided at once`);
    return a;
  };
  t.match(sync('10.0.1.5'), { ok: true, source: { kind: 'pod', pod: { name: 'mine', serviceAccount: 'app' } } });
  t.match(sync('::ffff:10.0.1.5'), { ok: true, source: { kind: 'pod' } }, 'IPv4-mapped form');
  t.same(sync('10.0.2.5'), { ok: false, reason: 'not_local' }, "another node's pod");
  t.match(sync('127.0.0.1'), { ok: true, source: { kind: 'node' } });
  t.match(sync('127.9.9.9'), { ok: true, source: { kind: 'node' } });
  t.match(sync('::1'), { ok: true, source: { kind: 'node' } });
  t.match(sync('192.168.1.10'), { ok: true, source: { kind: 'node' } });
  t.match(sync('172.20.1.1'), { ok: true, source: { kind: 'cidr' } });
  t.match(sync('fd00:1:2::3'), { ok: true, source: { kind: 'cidr' } });

  const stranger = guard.admit('203.0.113.7');
  t.ok(stranger instanceof Promise, 'an unknown address waits for the pod watch');
  t.equal(guard.waiting, 1);
  clock.advance(1999);
  clock.advance(1);
  t.same(await stranger, { ok: false, reason: 'unknown_source' }, 'refused when no pod shows up in time');
  t.equal(guard.waiting, 0);

  const newborn = guard.admit('10.0.1.77');
  clock.advance(500);
  pods.upsert(podInfo(pod('newborn', 'n1', '10.0.1.77')));
  t.match(await newborn, { ok: true, source: { kind: 'pod', pod: { name: 'newborn' } } }, 'a brand-new local pod is admitted once the watch has it');
});

t.test('source guard: the number of waiting connections is bounded', async (t) => {
  const clock = manualClock();
  const pods = new PodIndex();
  const guard = new SourceGuard({ nodeName: 'n1', pods, nodeAddresses: () => [], maxWaiting: 3, clock });
  const waits = [1, 2, 3].map((i) => guard.admit(`10.9.0.${i}`));
  t.same(guard.admit('10.9.0.4'), { ok: false, reason: 'too_many_waiting' });
  clock.advance(2000);
  for (const w of waits) t.same(await w, { ok: false, reason: 'unknown_source' });
  t.ok(guard.admit('10.9.0.5') instanceof Promise, 'room again after the waits ended');
});

t.test('CIDRs are validated with a clear reason', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  t.same(parseCidr('fd00::/8'), { address: 'fd00::', prefix: 8, family: 'ipv6' });
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', 'example.com/8', '10.0.0.0/8/8', '']) {
    t.throws(() => parseCidr(bad), /is not a CIDR like 10\.0\.0\.0\/8/, JSON.stringify(bad));
  }
});

t.test('refusal log: once per source per minute, bounded memory', async (t) => {
  const clock = manualClock();
  const log = new RefusalLog({ clock, maxSources: 2 });
  t.ok(log.shouldLog('a'));
  t.notOk(log.shouldLog('a'));
  clock.advance(60_000);
  t.ok(log.shouldLog('a'), 'again after a minute');
  t.ok(log.shouldLog('b'));
  t.ok(log.shouldLog('c'), 'a third source pushes out the oldest');
  t.ok(log.shouldLog('a'), 'forgotten, so logged again');
});

t.test('claims: node-attested, own view, forged ones refused with a reason', async (t) => {
  const clock = manualClock();
  const pods = new PodIndex();
  pods.upsert(podInfo(pod('web-1', 'node-a', '10.0.1.5', { ns: 'web', sa: 'frontend' })));
  pods.upsert(podInfo(pod('pay-1', 'node-b', '10.0.2.5', { ns: 'payments', sa: 'api' })));
  const o = { pods, trustDomain: 'cluster.local', clock };
  const nodeA = 'spiffe://hostmesh/node/node-a';
  const web = pods.byName('web', 'web-1') as PodInfo;
  t.equal(claimFor(web), 'web/web-1; sa=frontend');
  t.same(await checkClaim(claimFor(web), nodeA, o), { ok: true, identity: 'frontend.web.serviceaccount.identity.hostmesh.cluster.local', pod: web });
  t.match(await checkClaim('payments/pay-1; sa=api', nodeA, o), { ok: false, reason: 'wrong_node' }, 'node-a cannot speak for a pod on node-b');
  t.match(await checkClaim('web/web-1; sa=admin', nodeA, o), { ok: false, reason: 'wrong_service_account' });
  t.match(await checkClaim('web/web-1; sa=frontend', 'spiffe://hostmesh/node/node-b', o), { ok: false, reason: 'wrong_node' });
  t.match(await checkClaim('web/web-1; sa=frontend', 'hostmesh', o), { ok: false, reason: 'unattested_peer' }, 'a shared mesh certificate names no node');
  t.match(await checkClaim('web/web-1; sa=frontend', undefined, o), { ok: false, reason: 'unattested_peer' });
  for (const bad of ['web/web-1', 'web/web-1; sa=', 'Web/web-1; sa=x', 'web/web-1; sa=x\r\nx: y', `${'a'.repeat(64)}/p; sa=x`, 'web/../x; sa=x']) {
    t.match(await checkClaim(bad, nodeA, o), { ok: false, reason: 'malformed' }, JSON.stringify(bad));
  }
  const ghost = checkClaim('web/ghost; sa=default', nodeA, o);
  t.ok(ghost instanceof Promise, "an unknown pod waits for this router's watch");
  clock.advance(2000);
  t.match(await ghost, { ok: false, reason: 'unknown_pod', message: /no pod web\/ghost is known/ });
  const late = checkClaim('web/late; sa=default', nodeA, o);
  pods.upsert(podInfo(pod('late', 'node-a', '10.0.1.9', { ns: 'web' })));
  t.match(await late, { ok: true, identity: 'default.web.serviceaccount.identity.hostmesh.cluster.local' });
  t.equal(attestedNode('spiffe://m/node/ip-10-0-0-1.ec2.internal'), 'ip-10-0-0-1.ec2.internal');
  t.equal(CLAIM_HEADER, 'l5d-hostmesh-client-pod');
});

t.test('property: claims built from any valid pod verify; any change of node or account refuses', async () => {
  const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  await fc.assert(
    fc.asyncProperty(label, label, label, label, label, async (ns, name, sa, node, other) => {
      const pods = new PodIndex();
      const p: PodInfo = { namespace: ns, name, uid: '', nodeName: node, serviceAccount: sa, ips: [], hostNetwork: false };
      pods.upsert(p);
      const o = { pods, trustDomain: 'td', waitMs: 0 };
      const good = await checkClaim(claimFor(p), `spiffe://m/node/${node}`, o);
      if (!good.ok || good.identity !== workloadIdentity(p, 'td')) return false;
      if (other !== node && (await checkClaim(claimFor(p), `spiffe://m/node/${other}`, o)).ok) return false;
      if (other !== sa && (await checkClaim(`${ns}/${name}; sa=${other}`, `spiffe://m/node/${node}`, o)).ok) return false;
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('the pod directory follows the API: list, watch, deletes, IP reuse', async (t) => {
  const api = await new FakeApiServer().start();
  const client = new K8sClient(plainConnection('127.0.0.1', api.port));
  api.apply(pod('a', 'n1', '10.0.1.1', { ns: 'web', sa: 'front' }));
  const pods = new WatchedPods({ client, logger: silentLogger() }).start();
  t.teardown(async () => {
    await pods.stop();
    await client.close();
    await api.close();
  });
  await until(() => pods.synced);
  t.equal(pods.byIp('10.0.1.1')?.serviceAccount, 'front');
  api.apply(pod('b', 'n2', '10.0.2.1'));
  await until(() => pods.byIp('10.0.2.1') !== undefined);
  api.delete('Pod', 'web', 'a');
  await until(() => pods.byIp('10.0.1.1') === undefined);
  t.equal(pods.byName('web', 'a'), undefined);
  t.equal(pods.size, 1);
  t.ok(
    api.requests.some((r) => r.url.startsWith('/api/v1/pods?') || r.url === '/api/v1/pods'),
    'one cluster-wide pod list',
  );
});
