// The pool, fairness and deadline keys of a router's client: Linkerd 1's hostConnectionPool is
// enforced (minSize too), hostmesh's keys validate, and unset keys take the defaults.

import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { clientLimits } from '../../src/router/stages/endpoint/endpoint-pool.js';

function config(client: string): string {
  return `routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 4140
  client:
${client}
`;
}

/** The problems a client block's config is refused with (none: it loads). */
function problems(client: string): string[] {
  try {
    parseConfig(config(client), 'l5d.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

t.test('hostConnectionPool and the hostmesh keys load, minSize with no warning', async (t) => {
  const { config: c, warnings } = parseConfig(
    config(`    hostConnectionPool: {minSize: 1, maxSize: 16, maxWaiters: 10, idleTimeMs: 5000}
    maxWaitMs: 250
    maxInFlightPerSource: 3
    maxInFlightPerService: 12
    connectTimeoutMs: 700
    headersTimeoutMs: 1000
    bodyIdleTimeoutMs: 2000
    requestBodyIdleTimeoutMs: 3000
    maxEndpointPools: 40
    engine: undici`),
    'l5d.yaml',
  );
  const client = c.routers[0]?.client;
  t.same(client?.hostConnectionPool, { minSize: 1, maxSize: 16, maxWaiters: 10, idleTimeMs: 5000 });
  t.same(warnings, []);
  t.same(clientLimits(client), {
    minSize: 1,
    maxInFlight: 16,
    maxWaiters: 10,
    maxWaitersPerSource: 5,
    maxWaitMs: 250,
    maxPerSource: 3,
    maxPerService: 12,
    idleTimeMs: 5000,
    connectTimeoutMs: 700,
    headersTimeoutMs: 1000,
    bodyIdleTimeoutMs: 2000,
    requestBodyIdleTimeoutMs: 3000,
    maxEndpointPools: 40,
    engine: 'undici',
  });
});

t.test('defaults: 64 connections, a source half, a service three quarters, 1,024 waiters for 5 s', async (t) => {
  t.same(clientLimits({}), {
    minSize: 0,
    maxInFlight: 64,
    maxWaiters: 1024,
    maxWaitersPerSource: 512,
    maxWaitMs: 5000,
    maxPerSource: 32,
    maxPerService: 48,
    idleTimeMs: 30_000,
    connectTimeoutMs: 10_000,
    headersTimeoutMs: 30_000,
    bodyIdleTimeoutMs: 60_000,
    requestBodyIdleTimeoutMs: 60_000,
    maxEndpointPools: 1000,
    engine: 'lean',
  });
  t.equal(clientLimits({ hostConnectionPool: { maxSize: 1 } }).maxPerSource, 1, 'a share is at least one');
  t.equal(clientLimits({ hostConnectionPool: { maxSize: 4 }, maxInFlightPerSource: 100 }).maxPerSource, 4, 'a share is at most the pool');
});

t.test('bad values and unknown keys are errors with the key path', async (t) => {
  t.match(problems('    hostConnectionPool: {maxSize: 0}'), [/routers\[0\]\.client\.hostConnectionPool\.maxSize/]);
  t.match(problems('    hostConnectionPool: {maxConns: 3}'), [/unknown key 'maxConns'/]);
  t.match(problems('    headersTimeoutMs: 10'), [/routers\[0\]\.client\.headersTimeoutMs/]);
  t.match(problems('    maxInFlightPerSource: 1.5'), [/maxInFlightPerSource/]);
  t.match(problems('    hostConnectionPool: {minSize: -1}'), [/routers\[0\]\.client\.hostConnectionPool\.minSize/]);
});

t.test('minSize above maxSize (given, or the default 64) is an error at the minSize key', async (t) => {
  // The position is minSize's value (line 9 of the text, after hostConnectionPool: and maxSize:).
  t.same(problems('    hostConnectionPool:\n      maxSize: 4\n      minSize: 5'), [
    'l5d.yaml:9:16: routers[0].client.hostConnectionPool.minSize: 5 is more than maxSize (4): a pool cannot keep more connections than it may open',
  ]);
  t.match(problems('    hostConnectionPool: {minSize: 65}'), [
    /^l5d\.yaml:7:\d+: routers\[0\]\.client\.hostConnectionPool\.minSize: 65 is more than maxSize \(64, the default\)/,
  ]);
  t.same(problems('    hostConnectionPool: {minSize: 4, maxSize: 4}'), []);
});
