// Linkerd 1's resilience keys that are enforced: service.responseClassifier, service.retries
// (budget, backoff), service.retryBufferSize and client.requeueBudget load and validate; the
// timeouts (service.totalTimeoutMs, client.requestAttemptTimeoutMs) load too, without a warning.

import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';

function config(router: string): string {
  return `routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 4140
${router}
`;
}

t.test('service and requeueBudget load as Linkerd 1 writes them', async (t) => {
  const { config: c, warnings } = parseConfig(
    config(`  service:
    responseClassifier: {kind: io.l5d.http.retryableIdempotent5XX}
    retries:
      budget: {minRetriesPerSec: 5, percentCanRetry: 0.5, ttlSecs: 15}
      backoff: {kind: jittered, minMs: 10, maxMs: 10000}
    retryBufferSize: {requestBytes: 8192}
    totalTimeoutMs: 1000
  client:
    requestAttemptTimeoutMs: 300
    requeueBudget: {minRetriesPerSec: 1, percentCanRetry: 0.1, ttlSecs: 5}`),
    'l5d.yaml',
  );
  const r = c.routers[0];
  t.same(r?.service, {
    responseClassifier: { kind: 'io.l5d.http.retryableIdempotent5XX' },
    retries: { budget: { minRetriesPerSec: 5, percentCanRetry: 0.5, ttlSecs: 15 }, backoff: { kind: 'jittered', minMs: 10, maxMs: 10000 } },
    retryBufferSize: { requestBytes: 8192 },
    totalTimeoutMs: 1000,
  });
  t.same(r?.client.requeueBudget, { minRetriesPerSec: 1, percentCanRetry: 0.1, ttlSecs: 5 });
  t.equal(r?.client.requestAttemptTimeoutMs, 300);
  t.same(warnings, [], 'the timeouts are enforced: no "accepted, not enforced"');
});

t.test('constant backoff, and the classifier names without http.', async (t) => {
  const { config: c } = parseConfig(
    config(`  service:\n    responseClassifier: {kind: io.l5d.retryableRead5XX}\n    retries: {backoff: {kind: constant, ms: 50}}`),
    'l5d.yaml',
  );
  t.same(c.routers[0]?.service?.retries?.backoff, { kind: 'constant', ms: 50 });
});

t.test('mistakes are errors with file:line:col', async (t) => {
  const bad: [string, RegExp][] = [
    ['  service:\n    responseClassifier: {kind: io.l5d.http.retryableEverything}', /responseClassifier\.kind/],
    ['  service:\n    retries: {budget: {percentCanRetry: -1}}', /percentCanRetry/],
    ['  service:\n    retries: {budget: {ttlSecs: 0}}', /ttlSecs/],
    ['  service:\n    retries: {budget: {percntCanRetry: 0.1}}', /percntCanRetry/],
    ['  service:\n    retries: {backoff: {kind: jittered, minMs: 100, maxMs: 10}}', /maxMs/],
    ['  service:\n    retries: {backoff: {kind: exponential}}', /backoff/],
    ['  client:\n    requeueBudget: {minRetriesPerSec: -5}', /minRetriesPerSec/],
    ['  service:\n    totalTimeoutMs: 0', /totalTimeoutMs/],
    ['  service:\n    totalTimeoutMs: 1.5', /totalTimeoutMs/],
    ['  client:\n    requestAttemptTimeoutMs: -1', /requestAttemptTimeoutMs/],
  ];
  for (const [text, want] of bad) {
    try {
      parseConfig(config(text), 'l5d.yaml');
      t.fail(`accepted: ${text}`);
    } catch (err) {
      t.ok(err instanceof ConfigError, text);
      t.match((err as Error).message, want, text);
      t.match((err as Error).message, /l5d\.yaml:\d+:\d+/, 'names the spot');
    }
  }
});
