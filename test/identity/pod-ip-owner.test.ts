// Issue 23 (medium) and issue 22 (medium): who owns a pod IP. A tenant keeps its deleted pod
// alive with a finalizer and relabels it after the IP went to another tenant's new pod: the new
// pod keeps the IP. Two live pods with one IP: nobody owns it (counted, logged). Any order of
// events and any re-list gives the same answer (fast-check over interleavings).

import fc from 'fast-check';
import t from 'tap';
import { K8sClient, type KObject } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { PodIndex, WatchedPods, type PodInfo } from '../../src/identity/pod-directory.js';
import { silentLogger } from '../../src/log.js';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { until } from '../helpers/k8s.js';

const IP = '10.1.0.5';

function pod(ns: string, name: string, ip: string, extra: { terminating?: boolean; labels?: Record<string, string>; sa?: string } = {}): KObject {
  return {
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      ...(extra.labels ? { labels: extra.labels } : {}),
      ...(extra.terminating ? { deletionTimestamp: '2026-12-06T10:00:00Z', finalizers: ['tenant.example/keep'] } : {}),
    },
    spec: { nodeName: 'node-a', serviceAccountName: extra.sa ?? ns },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
  };
}

const owner = (pods: { byIp(ip: string): PodInfo | undefined }, ip = IP): string | undefined => {
  const p = pods.byIp(ip);
  return p === undefined ? undefined : `${p.namespace}/${p.name}`;
};

t.test('the finalizer attack, against the API: a terminating pod relabelled later does not take the IP back', async (t) => {
  for (const order of ['old first', 'new first'] as const) {
    const api = await new FakeApiServer().start();
    const client = new K8sClient(plainConnection('127.0.0.1', api.port));
    const pods = new WatchedPods({ client, logger: silentLogger(), backoff: { baseMs: 10, capMs: 50 } }).start();
    const old = pod('tenant-a', 'old', IP, { terminating: true });
    const fresh = pod('tenant-b', 'new', IP);
    if (order === 'old first') {
      api.apply(pod('tenant-a', 'old', IP)); // live, then deleted with a finalizer
      api.apply(old);
      api.apply(fresh);
    } else {
      api.apply(fresh);
      api.apply(old);
    }
    t.ok(await until(() => pods.synced && owner(pods) === 'tenant-b/new'), `${order}: the live new pod owns the IP`);
    api.apply(pod('tenant-a', 'old', IP, { terminating: true, labels: { relabelled: String(Date.now()) } }));
    t.ok(await until(() => pods.byName('tenant-a', 'old') !== undefined && (pods.byName('tenant-a', 'old')?.terminating ?? false)));
    await until(() => api.resourceVersion > 0 && pods.size === 2);
    t.equal(owner(pods), 'tenant-b/new', `${order}: relabelling the terminating pod changes nothing`);
    // A re-list (410 Expired mid-watch) gives the same answer.
    const lists = api.requests.filter((r) => !r.url.includes('watch=')).length;
    api.expireWatches();
    t.ok(await until(() => api.requests.filter((r) => !r.url.includes('watch=')).length > lists), 're-listed');
    t.ok(await until(() => api.watchesOf('Pod') === 1));
    t.equal(owner(pods), 'tenant-b/new', `${order}: same after a re-list`);
    // The terminating pod lets go (its finalizer removed): still the new pod's.
    api.delete('Pod', 'tenant-a', 'old');
    t.ok(await until(() => pods.size === 1));
    t.equal(owner(pods), 'tenant-b/new');
    await pods.stop();
    await client.close();
    await api.close();
  }
});

t.test('two live pods with one IP: no identity for it, counted once and logged; it comes back when one goes', async (t) => {
  const logged: unknown[] = [];
  const logger = { warn: (o: unknown) => logged.push(o) } as unknown as ConstructorParameters<typeof PodIndex>[0] extends infer O
    ? O extends { logger?: infer L }
      ? L
      : never
    : never;
  const index = new PodIndex({ logger });
  const info = (ns: string, name: string, terminating = false): PodInfo => ({
    namespace: ns,
    name,
    uid: name,
    nodeName: 'node-a',
    serviceAccount: ns,
    ips: [IP],
    hostNetwork: false,
    terminating,
  });
  index.upsert(info('a', 'one'));
  t.equal(owner(index), 'a/one');
  index.upsert(info('b', 'two'));
  t.equal(owner(index), undefined, 'two live claimants: unknown');
  index.upsert(info('b', 'two')); // a status update of either changes nothing
  index.upsert(info('a', 'one'));
  t.equal(owner(index), undefined);
  t.equal(index.conflictsSeen, 1, 'counted once per conflict');
  t.equal(index.conflictedIps, 1);
  t.equal(logged.length, 1, 'logged once');
  index.upsert(info('a', 'one', true));
  t.equal(owner(index), 'b/two', 'the other one terminating: the live pod owns it');
  t.equal(index.conflictedIps, 0);
  index.delete('b', 'two');
  t.equal(owner(index), 'a/one', 'only the terminating pod left: it keeps its identity during its grace period');
});

// --- property: the answer is a function of the final pods, whatever the order ---------------------

type Step = { readonly kind: 'upsert'; readonly pod: PodInfo } | { readonly kind: 'delete'; readonly ns: string; readonly name: string };

const IPS = ['10.0.0.1', '10.0.0.2', 'fd00::1'];
const NAMES = ['a/p1', 'a/p2', 'b/p1', 'b/p3', 'c/p4'];

/** The reference: from the final pods only. */
function expected(final: Map<string, PodInfo>, ip: string): string | undefined {
  const claims = [...final.values()].filter((p) => !p.hostNetwork && p.ips.includes(ip));
  const live = claims.filter((p) => p.terminating !== true);
  const c = live.length > 0 ? live : claims;
  return c.length === 1 ? `${c[0]!.namespace}/${c[0]!.name}` : undefined;
}

const podState = (key: string) =>
  fc.record({ ips: fc.subarray(IPS, { maxLength: 2 }), terminating: fc.boolean(), hostNetwork: fc.boolean() }).map(({ ips, terminating, hostNetwork }) => {
    const [ns, name] = key.split('/') as [string, string];
    return { namespace: ns, name, uid: key, nodeName: 'n', serviceAccount: ns, ips, hostNetwork: hostNetwork && ips.length === 0, terminating };
  });

/** Each pod's own history (in order, as a watch delivers one object's events), then any interleaving. */
const histories = fc
  .tuple(...NAMES.map((key) => fc.array(fc.option(podState(key), { nil: undefined }), { minLength: 1, maxLength: 4 }).map((h) => ({ key, h }))))
  .chain((hs) => {
    const steps: Step[][] = hs.map(({ key, h }) =>
      h.map((s): Step => {
        const [ns, name] = key.split('/') as [string, string];
        return s === undefined ? { kind: 'delete', ns, name } : { kind: 'upsert', pod: s };
      }),
    );
    const total = steps.reduce((n, s) => n + s.length, 0);
    return fc.array(fc.nat(NAMES.length - 1), { minLength: total * 2, maxLength: total * 2 }).map((picks) => {
      const cursors = steps.map(() => 0);
      const order: Step[] = [];
      for (const p of picks) {
        for (let k = 0; k < NAMES.length; k++) {
          const i = (p + k) % NAMES.length;
          if ((cursors[i] as number) < (steps[i] as Step[]).length) {
            order.push((steps[i] as Step[])[cursors[i]!++] as Step);
            break;
          }
        }
      }
      return { steps, order };
    });
  });

function apply(index: PodIndex, s: Step): void {
  if (s.kind === 'upsert') index.upsert(s.pod);
  else index.delete(s.ns, s.name);
}

t.test('property: any interleaving of the pods’ events, and a re-list in any order, gives the owner computed from the final pods', async (t) => {
  fc.assert(
    fc.property(histories, fc.infiniteStream(fc.nat()), ({ steps, order }, rnd) => {
      const final = new Map<string, PodInfo>();
      for (const s of steps) {
        const last = s[s.length - 1] as Step;
        if (last.kind === 'upsert') final.set(`${last.pod.namespace}/${last.pod.name}`, last.pod);
      }
      const index = new PodIndex();
      for (const s of order) apply(index, s);
      for (const ip of IPS) if (owner(index, ip) !== expected(final, ip)) return false;
      // A re-list: the final pods upserted in another order over whatever the index holds.
      const relisted = new PodIndex();
      for (const s of order.slice(0, (rnd.next().value as number) % (order.length + 1))) apply(relisted, s);
      const present = [...final.values()];
      const it = rnd;
      present.sort(() => ((it.next().value as number) % 3) - 1);
      for (const p of present) relisted.upsert(p);
      for (const key of NAMES) if (!final.has(key)) relisted.delete(key.split('/')[0] as string, key.split('/')[1] as string);
      for (const ip of IPS) if (owner(relisted, ip) !== expected(final, ip)) return false;
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass('checked');
});
