// The headers a hop sends on (outgoing-headers.ts): the router's own first, the client's
// end-to-end fields after, l5d-reqid kept or made.

import t from 'tap';
import { outgoingHeaders } from '../../../../src/router/stages/forward/outgoing-headers.js';

const own = { host: 'web', service: '/svc/web', client: '/#/io.l5d.fs/web', overrides: '', peerId: undefined, claim: undefined };

t.test('a request without l5d-reqid gets a fresh 64-bit hex id, distinct across pool refills', async (t) => {
  const seen = new Set<string>();
  // 512 ids per refill of the pool: 3,000 crosses it five times.
  for (let i = 0; i < 3000; i++) {
    const id = outgoingHeaders({}, own)['l5d-reqid'] as string;
    if (!/^[0-9a-f]{16}$/.test(id)) t.fail(`malformed id ${id}`);
    seen.add(id);
  }
  t.equal(seen.size, 3000, 'no id repeats');
});

t.test("a caller's l5d-reqid is carried on; its hop-by-hop and router-owned fields are not", async (t) => {
  const h = outgoingHeaders(
    { 'l5d-reqid': 'abc', connection: 'x-secret, keep-alive', 'x-secret': '1', 'x-app': 'v', via: '1.1 app', 'l5d-client-id': 'forged', host: 'evil' },
    own,
  );
  t.equal(h['l5d-reqid'], 'abc');
  t.equal(h['x-app'], 'v');
  t.equal(h['x-secret'], undefined, 'named by Connection: hop-by-hop');
  t.equal(h.connection, undefined);
  t.equal(h['l5d-client-id'], undefined, 'never trusted from outside');
  t.equal(h.host, 'web', "the router's Host");
  t.equal(h.via, '1.1 app, 1.1 hostmesh');
  t.same(Object.keys(h).slice(0, 5), ['host', 'via', 'l5d-dst-service', 'l5d-dst-client', 'l5d-reqid'], "the router's own fields lead");
});
