// Linkerd 1's DaemonSet manifests inject POD_IP, not NODE_NAME: the router finds its node from the
// API (the pod whose IP is POD_IP, else the pod named HOSTNAME), says how in the log, and a
// localnode transformer then keeps that node's endpoints. Nothing to find it by: a clear error.

import t from 'tap';
import { K8sClient } from '../../src/k8s/client.js';
import { plainConnection } from '../../src/k8s/connection.js';
import { findOwnNode, nodeNamePlan } from '../../src/k8s/own-node.js';
import { parseConfig } from '../../src/config/load.js';
import { checkRouters, startHostmesh } from '../../src/app/hostmesh.js';
import { pino } from 'pino';
import type { Logger } from '../../src/log.js';
import { FakeApiServer, type KObject } from '../fixtures/k8s-api-server.js';
import { Writable } from 'node:stream';

function pod(namespace: string, name: string, node: string, ip: string, phase = 'Running', hostNetwork = false): KObject {
  return { kind: 'Pod', metadata: { namespace, name }, spec: { nodeName: node, hostNetwork }, status: { phase, podIP: ip, podIPs: [{ ip }] } };
}

const api = await new FakeApiServer().start();
t.teardown(() => api.close());
api.apply(pod('default', 'l5d-abcde', 'node-b', '10.1.2.3'));
api.apply(pod('default', 'old-job', 'node-z', '10.1.2.3', 'Succeeded')); // an ended pod that held the IP once
api.apply(pod('kube-system', 'proxy-1', 'node-c', '192.168.0.3', 'Running', true));
api.apply(pod('kube-system', 'fluent-1', 'node-c', '192.168.0.3', 'Running', true)); // hostNetwork pods share the node IP
api.apply(pod('default', 'twin-1', 'node-d', '10.9.9.9'));
api.apply(pod('other', 'twin-2', 'node-e', '10.9.9.9'));

const client = new K8sClient(plainConnection('127.0.0.1', api.port));
t.teardown(() => client.close());

t.test('the plan: config and NODE_NAME win; POD_IP or (in a pod) HOSTNAME go to the API; else none', async (t) => {
  t.same(nodeNamePlan('n1', { NODE_NAME: 'n2' }), { kind: 'given', node: 'n1', how: 'nodeName in the config' });
  t.same(nodeNamePlan(undefined, { NODE_NAME: 'n2', POD_IP: '1.2.3.4' }), { kind: 'given', node: 'n2', how: 'NODE_NAME' });
  const byIp = nodeNamePlan(undefined, { POD_IP: '10.1.2.3', HOSTNAME: 'laptop' });
  t.match(byIp, { kind: 'api', podIp: '10.1.2.3', how: /the pod with IP 10\.1\.2\.3 \(POD_IP\)/ });
  t.notOk('hostname' in byIp, "outside a pod HOSTNAME is a machine's name: not used");
  t.match(nodeNamePlan(undefined, { HOSTNAME: 'l5d-abcde', KUBERNETES_SERVICE_HOST: '10.96.0.1' }), { kind: 'api', hostname: 'l5d-abcde' });
  t.match(nodeNamePlan(undefined, { HOSTNAME: 'l5d-abcde', POD_NAMESPACE: 'linkerd' }), { kind: 'api', hostname: 'l5d-abcde', namespace: 'linkerd' });
  t.match(nodeNamePlan(undefined, {}), { kind: 'none', why: /NODE_NAME.*POD_IP/ });
});

t.test('found by POD_IP; ended pods ignored; hostNetwork pods on one node agree', async (t) => {
  t.match(await findOwnNode(client, { kind: 'api', podIp: '10.1.2.3', how: '' }), { node: 'node-b', how: /POD_IP.*default\/l5d-abcde/ });
  t.match(await findOwnNode(client, { kind: 'api', podIp: '192.168.0.3', how: '' }), { node: 'node-c' });
});

t.test('ambiguous or unknown IP falls back to HOSTNAME; nothing found is an error naming what was asked', async (t) => {
  t.match(await findOwnNode(client, { kind: 'api', podIp: '10.9.9.9', hostname: 'twin-2', namespace: 'other', how: '' }), {
    node: 'node-e',
    how: /the pod named twin-2 \(HOSTNAME\) in namespace other/,
  });
  await t.rejects(
    findOwnNode(client, { kind: 'api', podIp: '10.9.9.9', how: '' }),
    /cannot find this router's node from the Kubernetes API: pods with IP 10\.9\.9\.9 \(POD_IP\) run on several nodes \(node-d, node-e\); set NODE_NAME/,
  );
  await t.rejects(
    findOwnNode(client, { kind: 'api', podIp: '10.0.0.99', hostname: 'nope', how: '' }),
    /no running pod with IP 10\.0\.0\.99 \(POD_IP\) is scheduled on a node; no running pod named nope \(HOSTNAME\) is scheduled on a node/,
  );
});

const configText = (apiPort: number): string => `
admin: {ip: 127.0.0.1, port: 0}
namers: [{kind: io.l5d.k8s, host: 127.0.0.1, port: ${apiPort}}]
routers:
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/1;
  interpreter: {kind: default, transformers: [{kind: io.l5d.k8s.localnode}]}
  servers: [{port: 0, ip: 127.0.0.1}]
`;

t.test('--check passes a localnode config when POD_IP is there, and fails without any way to the node', async (t) => {
  const { config } = parseConfig(configText(api.port), 'l5d.yaml', { env: {} });
  t.same(checkRouters(config, { POD_IP: '10.1.2.3' }), [], 'the node will be found at start');
  t.match(checkRouters(config, {}), [/io\.l5d\.k8s\.localnode needs the node name: set nodeName in the config, or NODE_NAME .*, or POD_IP/]);
});

function capture(): { logger: Logger; lines: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, out) as unknown as Logger, lines: () => text };
}

t.test('at start: the node comes from the API, the log says how; no such pod: the start fails clearly', async (t) => {
  const { config } = parseConfig(configText(api.port), 'l5d.yaml', { env: {} });
  const log = capture();
  const mesh = await startHostmesh(config, { logger: log.logger, env: { POD_IP: '10.1.2.3' } });
  t.teardown(() => mesh.close(0));
  t.equal(mesh.config.nodeName, 'node-b');
  t.match(
    log.lines(),
    /"node":"node-b","from":"the Kubernetes API: the pod with IP 10\.1\.2\.3 \(POD_IP\)[^"]*","msg":"node name found from the Kubernetes API"/,
  );
  const failing = capture();
  await t.rejects(
    startHostmesh(config, { logger: failing.logger, env: { POD_IP: '10.0.0.250' } }),
    /io\.l5d\.k8s\.localnode needs the node name; node name from the Kubernetes API: the pod with IP 10\.0\.0\.250 \(POD_IP\): cannot find/,
  );
});

t.test('--check builds namers[].transformers as the start does: a localnode there needs the node name too', async (t) => {
  const text = `
namers:
- {kind: io.l5d.k8s, host: 127.0.0.1, port: ${api.port}}
- {kind: io.l5d.k8s, prefix: /io.l5d.k8s.local, host: 127.0.0.1, port: ${api.port}, transformers: [{kind: io.l5d.k8s.localnode}]}
routers:
- {protocol: http, dtab: /svc => /#/io.l5d.k8s.local/default/http;, servers: [{port: 4140}]}
`;
  const { config } = parseConfig(text, 'l5d.yaml', { env: {} });
  t.match(checkRouters(config, {}), [/router namer \/io\.l5d\.k8s\.local: io\.l5d\.k8s\.localnode needs the node name/]);
  t.same(checkRouters(config, { POD_IP: '10.1.2.3' }), []);
});
