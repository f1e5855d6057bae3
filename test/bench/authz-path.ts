// `npm run bench:authz-path`: CPU per request through two routers over mTLS (the k8s test mesh,
// in this process) with no policy and with a 600-rule deny-by-default policy, rounds interleaved.

import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeApiServer } from '../fixtures/k8s-api-server.js';
import { endpointSlice, service } from '../helpers/k8s.js';
import { NODES, startK8sMesh, type K8sMesh } from '../helpers/k8s-mesh.js';
import { freePort } from '../helpers/ports.js';

const ROUNDS = Number(process.env['ROUNDS'] ?? 5);
const PER_ROUND = Number(process.env['REQUESTS'] ?? 4000);
const CONCURRENCY = 16;

/** 60 namespaces x 10 rules that never match this bench's caller, then the one that lets it through. */
function policy600(): string {
  const lines = ['namespaces:', '  "*": deny', 'rules:'];
  for (let n = 0; n < 60; n++) {
    for (let r = 0; r < 10; r++) {
      const ns = n === 0 ? 'default' : `ns-${n}`;
      lines.push(
        `- name: ns-${n}-rule-${r}`,
        `  from: [{namespace: ns-${(n + r + 1) % 60}, serviceAccount: "client-${r}-*"}]`,
        `  to: [{namespace: ${ns}, service: ${n === 0 ? 'web' : `svc-${r}`}, ports: [8080, http], methods: [GET, POST], paths: [/api/v${r % 3}]}]`,
      );
    }
  }
  lines.push('- name: bench-caller', '  from: [{identity: "*"}]', '  to: [{namespace: default, service: web}]');
  return lines.join('\n') + '\n';
}

async function mesh(policyFile: string | undefined): Promise<{ mesh: K8sMesh; api: FakeApiServer }> {
  const api = await new FakeApiServer().start();
  const m = await startK8sMesh(api, policyFile === undefined ? {} : { configure: (c) => ({ ...c, authz: { policyFile } }) });
  return { mesh: m, api };
}

async function round(m: K8sMesh, agent: http.Agent, n: number): Promise<number> {
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: NODES[0].ip, port: m.ports.outgoing, path: 'http://web/', agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) await one();
    }),
  );
  const used = process.cpuUsage(cpu0);
  return (used.user + used.system) / n; // microseconds of this process (client + both routers + pod)
}

const dir = await mkdtemp(join(tmpdir(), 'hostmesh-bench-authz-'));
const file = join(dir, 'policy.yaml');
await writeFile(file, policy600());
const cases = { none: await mesh(undefined), 'policy-600': await mesh(file) };
const port = await freePort('127.0.0.40');
let podIp = 40;
for (const { mesh: m, api } of Object.values(cases)) {
  const ip = `127.0.0.${podIp++}`;
  await m.startPods([{ name: 'web-1', ip, node: 'node-b' }], port);
  api.apply(service('default', 'web', [{ name: 'http', port: 80 }]));
  api.apply(endpointSlice('default', 'web-x', 'web', [{ ip, node: 'node-b' }], [{ name: 'http', port }]));
}
const agents = Object.fromEntries(Object.keys(cases).map((k) => [k, new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY })]));
for (const [name, { mesh: m }] of Object.entries(cases)) {
  for (let i = 0; ; i++) {
    try {
      await round(m, agents[name] as http.Agent, 2000); // warm up (and wait for discovery)
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
const samples: Record<string, number[]> = { none: [], 'policy-600': [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, { mesh: m }] of Object.entries(cases)) samples[name]?.push(await round(m, agents[name] as http.Agent, PER_ROUND));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const none = median(samples['none'] ?? []);
const withPolicy = median(samples['policy-600'] ?? []);
for (const [name, xs] of Object.entries(samples)) {
  process.stdout.write(`${name.padEnd(12)} median ${median(xs).toFixed(1)} us CPU/request (rounds: ${xs.map((x) => x.toFixed(1)).join(', ')})\n`);
}
process.stdout.write(`600-rule policy vs none: ${(((withPolicy - none) / none) * 100).toFixed(1)}% CPU per request (target: under 5%)\n`);
for (const a of Object.values(agents)) a.destroy();
for (const { mesh: m, api } of Object.values(cases)) {
  await m.close();
  await api.close();
}
await rm(dir, { recursive: true, force: true });
