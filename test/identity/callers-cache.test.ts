// A pod's caller is made once per version of the pod, on each side (src/identity/caller.ts): the
// same pod gives the same caller request after request, and a pod that changed (a new PodInfo from
// the watch: another service account, say) gives a caller with the new facts at once.

import t from 'tap';
import { Callers } from '../../src/identity/caller.js';
import { PodIndex, type PodInfo } from '../../src/identity/pod-directory.js';

const NODE_A = 'spiffe://hostmesh/node/node-a';
const v1: PodInfo = { namespace: 'shop', name: 'web-1', uid: 'u1', nodeName: 'node-a', serviceAccount: 'web', ips: ['10.0.0.5'], hostNetwork: false };
const v2: PodInfo = { ...v1, serviceAccount: 'web-v2' };

t.test('outgoing side: the same pod, the same caller; a new version of the pod, a new caller', async (t) => {
  const callers = new Callers({ trustDomain: 'cluster.local', pods: new PodIndex(), verifyClaims: true });
  const a = callers.fromSource({ kind: 'pod', pod: v1 });
  t.match(a, { authenticated: true, namespace: 'shop', serviceAccount: 'web', claim: 'shop/web-1; sa=web' });
  t.equal(callers.fromSource({ kind: 'pod', pod: v1 }), a, 'made once for this version');
  const b = callers.fromSource({ kind: 'pod', pod: v2 });
  t.not(b, a);
  t.match(b, { serviceAccount: 'web-v2', claim: 'shop/web-1; sa=web-v2' }, 'the changed pod speaks with its new service account');
  t.ok(Object.isFrozen(a), 'shared between requests, so nobody can change it');
  t.equal(callers.fromSource({ kind: 'node' }).authenticated, false);
});

t.test('incoming side: a checked claim for the same pod gives the same caller; the pod changed, the caller follows', async (t) => {
  const pods = new PodIndex();
  pods.upsert(v1);
  const callers = new Callers({ trustDomain: 'cluster.local', pods, verifyClaims: true });
  const a = callers.fromPeer(NODE_A, 'shop/web-1; sa=web');
  t.match(a, { authenticated: true, identity: 'web.shop.serviceaccount.identity.hostmesh.cluster.local', serviceAccount: 'web' });
  t.equal(callers.fromPeer(NODE_A, 'shop/web-1; sa=web'), a, 'made once for this version');
  pods.upsert(v2);
  t.throws(() => callers.fromPeer(NODE_A, 'shop/web-1; sa=web'), { code: 'IDENTITY_REFUSED' }, 'the old service account is refused at once');
  const b = callers.fromPeer(NODE_A, 'shop/web-1; sa=web-v2');
  t.match(b, { serviceAccount: 'web-v2' });
  t.not(b, a);
});

t.test("incoming side without a claim: the peer's own caller, the same for each of its requests", async (t) => {
  const callers = new Callers({ trustDomain: 'cluster.local', pods: new PodIndex(), verifyClaims: true });
  const a = callers.fromPeer(NODE_A, undefined);
  t.same(a, { authenticated: true, identity: NODE_A });
  t.equal(callers.fromPeer(NODE_A, undefined), a);
  t.same(callers.fromPeer('spiffe://hostmesh/node/node-b', undefined), { authenticated: true, identity: 'spiffe://hostmesh/node/node-b' });
  t.same(callers.fromPeer(undefined, undefined), { authenticated: false }, 'no verified peer: unauthenticated');
});
