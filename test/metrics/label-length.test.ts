// Service and client names come from requests (Host, override dtabs naming /$/inet addresses);
// a metric row keeps its labels for the process's life, so a name longer than MAX_LABEL_CHARS
// is counted on the overflow row instead of becoming labels of its own.

import t from 'tap';
import { MAX_LABEL_CHARS, Metrics, OVERFLOW } from '../../src/metrics/metrics.js';

t.test('long service and client names share the overflow row; short ones keep their own', async (t) => {
  const metrics = new Metrics();
  const rm = metrics.router('out');
  const longService = `/svc/${'s'.repeat(MAX_LABEL_CHARS)}`;
  const longClient = `/$/inet/${'h'.repeat(MAX_LABEL_CHARS)}/80`;
  rm.listener.done('/svc/web', longClient, 200, 0.01);
  rm.listener.done(longService, '/#/io.l5d.fs/web', 502, 0.01);
  rm.router.authz(longService, '/#/io.l5d.fs/web', 'x', 'allow');
  t.same([...rm.requests.services.keys()].sort(), ['/svc/web', OVERFLOW].sort(), 'the long service went to the overflow row');
  t.same([...(rm.requests.services.get('/svc/web')?.clients.keys() ?? [])], [OVERFLOW], 'the long client too');
  const text = await metrics.registry.metrics();
  t.notMatch(text, /s{256}|h{256}/, 'no long name in any label');
  t.match(text, /service="\/svc\/web"/, 'short names keep their labels');
});
