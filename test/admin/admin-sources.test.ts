// The admin port serves probes and metrics to everyone, and config, topology and the dashboard
// only to this host (localhost, where kubectl port-forward arrives, or its own address) and to
// admin.allowedSourceCidrs: a pod that can reach the router pod's IP reads nothing else.

import http from 'node:http';
import t from 'tap';
import type { HostmeshConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';

const HOST = '127.0.6.2';
const POD = '127.0.6.40'; // another pod: a source that is not this host
const OPERATOR = '127.0.6.50'; // a source admin.allowedSourceCidrs lets in

function get(path: string, localAddress: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, path, localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const [proxy, adminPort] = (await freePorts(HOST, 2)) as [number, number];
const config: HostmeshConfig = {
  admin: { ip: HOST, port: adminPort, allowRemoteShutdown: false, allowedSourceCidrs: [`${OPERATOR}/32`] },
  namers: [],
  routers: [
    {
      protocol: 'http',
      label: 'outgoing',
      dtab: '/svc => /$/inet;',
      identifier: [],
      transformers: [],
      servers: [{ ip: HOST, port: proxy }],
      client: { loadBalancer: { kind: 'p2c' } },
      maxHops: 64,
    },
  ],
  shutdownGraceMs: 0,
  baseDir: '/',
};
const mesh = await startHostmesh(config, { logger: silentLogger() });
t.teardown(() => mesh.close(0));

t.test('probes and metrics are open to any source', async (t) => {
  for (const path of ['/admin/ping', '/ready', '/metrics', '/admin/metrics/prometheus', '/admin/metrics.json']) {
    t.equal(await get(path, POD, adminPort), 200, path);
  }
});

t.test('config, topology and the dashboard are refused to another pod, served to this host and the allowed CIDRs', async (t) => {
  for (const path of ['/config.json', '/client_state.json', '/delegator.json?router=outgoing&path=/svc/x', '/', '/admin/routers.json', '/authz/callers.json']) {
    t.equal(await get(path, POD, adminPort), 403, `${path} from another pod`);
    t.not(await get(path, '127.0.0.1', adminPort), 403, `${path} from localhost (port-forward)`);
    t.not(await get(path, HOST, adminPort), 403, `${path} from the node's own address`);
    t.not(await get(path, OPERATOR, adminPort), 403, `${path} from admin.allowedSourceCidrs`);
  }
});
