// Claims about pods this router does not know wait for its pod watch, at most maxClaimWaits at
// once per router (as the outgoing port bounds sources waiting): past it a claim is refused at
// once (403 IDENTITY_REFUSED, counted as too_many_waiting), a known pod's claim still passes, and
// once the waits end there is room again. Time is the test's own.

import t from 'tap';
import { Callers, DEFAULT_MAX_CLAIM_WAITS } from '../../src/identity/caller.js';
import { PodIndex, type PodInfo } from '../../src/identity/pod-directory.js';
import { HostmeshError } from '../../src/errors.js';
import type { Caller } from '../../src/router/context.js';

function manualTimers() {
  const timers: { fn: () => void; live: boolean }[] = [];
  return {
    now: () => 0,
    schedule: (_ms: number, fn: () => void) => {
      const timer = { fn, live: true };
      timers.push(timer);
      return () => {
        timer.live = false;
      };
    },
    fireAll() {
      for (const timer of timers.splice(0)) if (timer.live) timer.fn();
    },
    get live() {
      return timers.filter((x) => x.live).length;
    },
  };
}

const NODE_A = 'spiffe://hostmesh/node/node-a';
const known: PodInfo = { namespace: 'shop', name: 'web-1', uid: 'u', nodeName: 'node-a', serviceAccount: 'web', ips: ['10.0.0.5'], hostNetwork: false };

function refusal(f: () => Caller | Promise<Caller>): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof HostmeshError ? `${err.code}: ${err.message}` : String(err);
  }
}

t.test('past maxClaimWaits an unknown pod is refused at once; known pods pass; room once the waits end', async (t) => {
  const pods = new PodIndex();
  pods.upsert(known);
  const timers = manualTimers();
  const results: string[] = [];
  const callers = new Callers({
    trustDomain: 'cluster.local',
    pods,
    verifyClaims: true,
    maxClaimWaits: 3,
    clock: timers,
    events: { claim: (r) => results.push(r) },
  });
  const waits = Array.from({ length: 3 }, (_, i) => callers.fromPeer(NODE_A, `shop/ghost-${i}; sa=web`));
  t.ok(
    waits.every((w) => w instanceof Promise),
    'the first three wait for the pod watch',
  );
  t.equal(callers.waiting, 3);
  const refused = refusal(() => callers.fromPeer(NODE_A, 'shop/ghost-9; sa=web'));
  t.match(refused, /IDENTITY_REFUSED: .*3 claims already wait for the pod watch \(identity\.maxClaimWaits\)/, 'the fourth is refused at once');
  t.equal(results.at(-1), 'too_many_waiting', 'counted by its own reason');
  t.equal(timers.live, 3, 'no timer armed for the refused claim');
  const ok = callers.fromPeer(NODE_A, 'shop/web-1; sa=web');
  t.match(ok, { identity: 'web.shop.serviceaccount.identity.hostmesh.cluster.local' }, 'a known pod is decided at once, cap or not');
  timers.fireAll();
  for (const w of waits) await t.rejects(w as Promise<Caller>, { code: 'IDENTITY_REFUSED' });
  t.equal(callers.waiting, 0, 'the waits ended');
  const again = callers.fromPeer(NODE_A, 'shop/ghost-10; sa=web');
  t.ok(again instanceof Promise, 'room again: an unknown pod waits');
  timers.fireAll();
  await t.rejects(again as Promise<Caller>);
});

t.test('a pod that appears ends its wait and frees the slot', async (t) => {
  const pods = new PodIndex();
  const timers = manualTimers();
  const callers = new Callers({ trustDomain: 'cluster.local', pods, verifyClaims: true, maxClaimWaits: 1, clock: timers });
  const wait = callers.fromPeer(NODE_A, 'shop/web-1; sa=web');
  t.match(
    refusal(() => callers.fromPeer(NODE_A, 'shop/other; sa=web')),
    /maxClaimWaits/,
  );
  pods.upsert(known);
  t.match(await wait, { identity: 'web.shop.serviceaccount.identity.hostmesh.cluster.local' });
  t.equal(callers.waiting, 0);
  t.equal(DEFAULT_MAX_CLAIM_WAITS, 1024, "the default matches the outgoing port's bound on waiting sources");
});

t.test('maxClaimWaits 0: an unknown pod never waits', async (t) => {
  const pods = new PodIndex();
  const callers = new Callers({ trustDomain: 'cluster.local', pods, verifyClaims: true, maxClaimWaits: 0 });
  t.match(
    refusal(() => callers.fromPeer(NODE_A, 'shop/x; sa=web')),
    /IDENTITY_REFUSED/,
  );
  t.equal(callers.waiting, 0);
});
