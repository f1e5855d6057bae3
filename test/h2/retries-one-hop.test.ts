// One-hop retries on h2 routers (issue 25: the attempt loop is now shared by HTTP/1, HTTP/2 and
// Upgrade): a gRPC app that answers UNAVAILABLE (retryable for io.l5d.h2.grpc.default) is called
// 1 + the outgoing router's maxRetriesPerRequest times over two routers, never (1 + m) x (1 + 10)
// as when the incoming router retried too. A per-prefix (io.l5d.static) service classifier applies
// to the names under its prefix: with io.l5d.h2.grpc.neverRetryable the app is called once (the
// h2 router once read only its router-wide classifier, so such a config loaded and was ignored).

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import type { RouterConfig } from '../../src/config/types.js';
import { startRefusingGreeter, unary } from '../helpers/grpc-greeter.js';
import { B, startH2Mesh } from '../helpers/h2-mesh.js';

const MAX_RETRIES = 2;
const REFUSAL = 'the app is unavailable';
const retries = { maxRetriesPerRequest: MAX_RETRIES, backoff: { kind: 'constant' as const, ms: 0 } };

const CASES: readonly { name: string; service: RouterConfig['service']; calls: number }[] = [
  {
    name: 'an UNAVAILABLE answer is retried by the outgoing router only: 1 + maxRetriesPerRequest calls reach the app',
    service: { retries },
    calls: 1 + MAX_RETRIES,
  },
  {
    name: "the name's io.l5d.static neverRetryable classifier: an UNAVAILABLE answer reaches the app once",
    service: {
      configs: [
        { prefix: '/svc', retries },
        { prefix: '/svc/helloworld.Greeter', responseClassifier: { kind: 'io.l5d.h2.grpc.neverRetryable' } },
      ],
    },
    calls: 1,
  },
];

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const mesh = await startH2Mesh({ service: c.service });
    t.teardown(() => mesh.close());
    const app = await startRefusingGreeter(B, mesh.target, (name, host, port) => mesh.register(name, host, port), {
      code: grpc.status.UNAVAILABLE,
      details: REFUSAL,
    });
    t.teardown(() => app.close());
    for (let i = 0; i < 3; i++) {
      const before = app.calls();
      const err = await unary(app.client, 'SayHello', { name: `call ${i}` }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      t.equal(err?.code, grpc.status.UNAVAILABLE, 'the caller gets the last answer');
      t.equal(err?.details, REFUSAL, "the app's own message");
      t.equal(app.calls() - before, c.calls, `call ${i}: the app was called ${app.calls() - before} times`);
    }
  });
}
