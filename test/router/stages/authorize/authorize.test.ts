// The authorization stage on its own: which caller it decides for (listener's caller, else the
// verified peer, else unauthenticated), the outgoing side's override guard, the audit log's rate
// limit on an injected clock, and the bounds of the dashboard's caller tally.

import { clockWithNow } from '../../../../src/core/clock.js';
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { parsePolicy } from '../../../../src/authz/parse-policy.js';
import { HostmeshError } from '../../../../src/errors.js';
import { AuthzCallers, MAX_AUTHZ_DESTINATIONS, MAX_CALLERS_PER_DESTINATION } from '../../../../src/metrics/authz-callers.js';
import { AUDIT_LOG_PER_MINUTE, authorizer, destinationOf } from '../../../../src/router/stages/authorize/authorize.js';
import type { RequestContext } from '../../../../src/router/context.js';

const POLICY = parsePolicy(
  `namespaces:
  payments: deny
  staging: audit
  "*": {allowDtabOverride: false}
rules:
  - name: node-a-pays
    from: [{node: node-a}]
    to: [{namespace: payments, service: api}]
  - name: web-pays
    from: [{namespace: web}]
    to: [{namespace: payments, service: api}]
`,
  'p.yaml',
);

// The direction is the context's (the listener's), never the socket's TLS.
const req = (url = '/'): IncomingMessage => ({ socket: { encrypted: false }, method: 'GET', url }) as unknown as IncomingMessage;
const API = '/#/io.l5d.k8s/payments/http/api';
const LEDGER = '/#/io.l5d.k8s/payments/http/ledger';

function recorder(): { logger: pino.Logger; lines: { msg: string; suppressed?: number }[] } {
  const lines: { msg: string; suppressed?: number }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as { msg: string });
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

const denied = (f: () => void): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return err instanceof HostmeshError ? `${err.code}: ${err.message}` : String(err);
  }
};

t.test('incoming: the listener caller if any, else the verified peer identity', async (t) => {
  const decisions: string[] = [];
  const authorize = authorizer({
    policy: () => POLICY,
    logger: pino({ level: 'silent' }),
    events: { authzDecision: (_s, dest, caller, v) => decisions.push(`${caller} ${dest} ${v}`), overrideRefused: () => {} },
  });
  t.equal(
    denied(() => authorize(req(), { direction: 'inbound', service: '/svc/api' }, API, 'spiffe://hostmesh/node/node-a')),
    undefined,
    'a node identity as peer: node rule',
  );
  t.match(
    denied(() => authorize(req(), { direction: 'inbound', service: '/svc/api' }, API, 'spiffe://hostmesh/node/node-b')),
    /^AUTHZ_DENIED: authorization denied: no rule allows .*node-b.* to payments\/api:http/,
  );
  const web: RequestContext = {
    service: '/svc/api',
    caller: { authenticated: true, identity: 'shop.web.serviceaccount.identity.hostmesh.cluster.local', namespace: 'web', serviceAccount: 'shop' },
  };
  t.equal(
    denied(() => authorize(req(), { ...web, direction: 'inbound' }, API, 'spiffe://hostmesh/node/node-b')),
    undefined,
    "the listener's caller wins over the peer",
  );
  t.match(
    denied(() => authorize(req(), { ...web, direction: 'inbound' }, LEDGER, undefined)),
    /AUTHZ_DENIED/,
    'decided on the bound name given',
  );
  t.match(
    denied(() => authorize(req(), { direction: 'inbound' }, API, undefined)),
    /AUTHZ_DENIED: .*unauthenticated/i,
    'no caller, no peer: unauthenticated',
  );
  t.same(decisions.slice(0, 2), [
    'spiffe://hostmesh/node/node-a /#/io.l5d.k8s/payments/http/api allow',
    'spiffe://hostmesh/node/node-b /#/io.l5d.k8s/payments/http/api deny',
  ]);
});

t.test('outgoing: destinations are not decided there; overrides are refused per caller namespace', async (t) => {
  const decisions: string[] = [];
  const refused: string[] = [];
  const authorize = authorizer({
    policy: () => POLICY,
    logger: pino({ level: 'silent' }),
    events: { authzDecision: () => decisions.push('x'), overrideRefused: (s, d, c) => refused.push(`${s} ${d} ${c}`) },
  });
  t.equal(
    denied(() => authorize(req(), { direction: 'outbound', service: '/svc/ledger' }, LEDGER, undefined)),
    undefined,
    'the incoming router decides',
  );
  t.same(decisions, []);
  t.match(
    denied(() => authorize(req(), { direction: 'outbound', service: '/svc/x', overrides: '/svc/x=>/svc/y' }, LEDGER, undefined)),
    /^DTAB_OVERRIDE_REFUSED: l5d-dtab overrides are not allowed for unauthenticated/,
  );
  t.same(refused, [`/svc/x ${LEDGER} unauthenticated`]);
  t.equal(
    denied(() => authorize(req(), { direction: 'outbound', service: '/svc/x', overrides: '' }, LEDGER, undefined)),
    undefined,
    'no override, nothing to refuse',
  );
});

t.test('audit: allowed; would-deny lines are rate limited on the injected clock and the rest summed up', async (t) => {
  let now = 1_000_000;
  const { logger, lines } = recorder();
  const verdicts: string[] = [];
  const authorize = authorizer({
    policy: () => POLICY,
    logger,
    clock: clockWithNow(() => now),
    events: { authzDecision: (_s, _d, _c, v) => verdicts.push(v), overrideRefused: () => {} },
  });
  const staging = '/#/io.l5d.k8s/staging/http/app';
  for (let i = 0; i < AUDIT_LOG_PER_MINUTE + 5; i++)
    t.equal(
      denied(() => authorize(req(), { direction: 'inbound' }, staging, 'spiffe://hostmesh/node/node-b')),
      undefined,
    );
  t.ok(verdicts.every((v) => v === 'audit') && verdicts.length === AUDIT_LOG_PER_MINUTE + 5, 'every one allowed and counted as audit');
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, AUDIT_LOG_PER_MINUTE, 'at most the per-minute budget of lines');
  t.match(lines[0]?.msg, /would deny/);
  now += 60_000;
  authorize(req(), { direction: 'inbound' }, staging, 'spiffe://hostmesh/node/node-b');
  await new Promise((r) => setImmediate(r));
  t.equal(lines[AUDIT_LOG_PER_MINUTE]?.suppressed, 5, 'the next minute says how many were not logged');
  t.match(lines[AUDIT_LOG_PER_MINUTE + 1]?.msg, /would deny/, 'and logs again');
});

t.test('the caller tally is bounded: 16 callers per destination then other; 500 destinations then overflow', async (t) => {
  const tally = new AuthzCallers();
  for (let i = 0; i < 40; i++) tally.record('/svc/a', '/#/a', `caller-${i}`, i % 2 === 0 ? 'allow' : 'deny');
  const a = tally.view()[0];
  t.equal(a?.callers.length, MAX_CALLERS_PER_DESTINATION + 1);
  const other = a?.callers.find((c) => c.identity === 'other');
  t.same([other?.allowed, other?.denied], [12, 12], 'callers past the cap are summed under other');
  for (let i = 0; i < 2 * MAX_AUTHZ_DESTINATIONS; i++) tally.record(`/svc/${i}`, `/#/d${i}`, 'c', 'audit');
  const view = tally.view();
  t.equal(view.length, MAX_AUTHZ_DESTINATIONS + 1);
  const overflow = view.find((d) => d.destination === 'overflow');
  t.equal(overflow?.callers[0]?.audited, MAX_AUTHZ_DESTINATIONS + 1, 'destinations past the cap are summed under overflow');
});

t.test('the workload destination of an endpoint is made once, and anew for another name or prefix', async (t) => {
  const endpoint = { host: '10.0.0.1', port: 8080, meta: { nodeName: 'node-a', podNamespace: 'payments', podName: 'api-1', serviceAccount: 'api' } };
  const first = destinationOf(API, undefined, endpoint);
  t.same(first, { namespace: 'payments', service: 'api', port: 'http', name: API, serviceAccount: 'api', pod: 'api-1' });
  t.equal(destinationOf(API, undefined, endpoint), first, 'asked again for the same endpoint and name: the same destination');
  t.same(destinationOf(LEDGER, undefined, endpoint), {
    namespace: 'payments',
    service: 'ledger',
    port: 'http',
    name: LEDGER,
    serviceAccount: 'api',
    pod: 'api-1',
  });
  t.same(destinationOf(API, '/k8s', endpoint), { name: API, namespace: 'payments', serviceAccount: 'api', pod: 'api-1' }, 'another prefix: not a k8s name');
  t.same(
    destinationOf(API, undefined, { host: '10.0.0.2', port: 80, meta: {} }),
    { namespace: 'payments', service: 'api', port: 'http', name: API },
    'no workload',
  );
});
