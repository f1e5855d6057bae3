// Child process of the pod-watch benchmark: the test API server holding PODS realistic pods (labels,
// annotations, owner, two containers with env and probes, status conditions: ~3 KB of JSON each).

import { FakeApiServer } from '../fixtures/k8s-api-server.js';

const PODS = Number(process.env['PODS'] ?? 5000);
const NODES = 50;
const ip = (n: number): string => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

const api = await new FakeApiServer({ history: 100_000 }).start();
for (let i = 0; i < PODS; i++) {
  const app = `app-${i % 1000}`;
  api.apply({
    kind: 'Pod',
    metadata: {
      name: `${app}-7d9f8c6b5-${i.toString(36).padStart(5, 'x')}`,
      namespace: `team-${i % 40}`,
      labels: { app, 'pod-template-hash': '7d9f8c6b5', 'app.kubernetes.io/part-of': 'shop', tier: 'backend' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-30T10:00:00Z', 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${app}-7d9f8c6b5`, uid: `uid-rs-${i % 1000}`, controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      nodeName: `node-${i % NODES}`,
      serviceAccountName: `${app}-sa`,
      containers: ['main', 'sidecar'].map((c) => ({
        name: c,
        image: `registry.example/${app}/${c}:1.42.0`,
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        env: [
          { name: 'http_proxy', value: '$(HOST_IP):4140' },
          { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
          { name: 'NO_PROXY', value: 'kubernetes.default.svc,localhost,127.0.0.1' },
        ],
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
        readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
        volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
      })),
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } }],
    },
    status: {
      phase: 'Running',
      hostIP: `192.168.0.${i % NODES}`,
      podIP: ip(i),
      podIPs: [{ ip: ip(i) }],
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
        type,
        status: 'True',
        lastTransitionTime: '2026-11-30T10:00:05Z',
      })),
      containerStatuses: ['main', 'sidecar'].map((name) => ({
        name,
        ready: true,
        restartCount: 0,
        image: `registry.example/${app}/${name}:1.42.0`,
        state: { running: { startedAt: '2026-11-30T10:00:03Z' } },
      })),
    },
  });
}
process.send?.({ port: api.port, pods: PODS });
process.on('disconnect', () => void api.close().then(() => process.exit(0)));
