import t from 'tap';
import { appendVia, endToEnd, viaHops } from '../../src/router/headers.js';

t.test('hop-by-hop headers and the ones Connection names are stripped', async (t) => {
  const out = endToEnd(
    {
      connection: 'keep-alive, x-secret',
      'keep-alive': 'timeout=5',
      'x-secret': '1',
      'proxy-authorization': 'Basic x',
      te: 'trailers',
      upgrade: 'websocket',
      'transfer-encoding': 'chunked',
      'x-keep': 'yes',
      'l5d-client-id': 'forged',
    },
    new Set(['l5d-client-id']),
  );
  t.same(out, { 'x-keep': 'yes' });
});

t.test('Via counts and appends hops', async (t) => {
  t.equal(viaHops(undefined), 0);
  t.equal(viaHops('1.1 a, 1.1 b'), 2);
  t.equal(viaHops(['1.1 a', '1.1 b, 1.0 c']), 3);
  t.equal(appendVia(undefined), '1.1 hostmesh');
  t.equal(appendVia('1.1 x'), '1.1 x, 1.1 hostmesh');
});
