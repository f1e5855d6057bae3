// `npm run chaos`: issue 18's resilience figures against three `hostmesh run` child processes
// (node-a/b/c on 127.0.0.2/.3/.4, mTLS between them, fs namer views per node), 200 req/s open loop.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const RATE = Number(process.env['RATE'] ?? 200);
const ACCRUAL_SECONDS = Number(process.env['ACCRUAL_SECONDS'] ?? 10);
/** Time each node's view takes to follow the previous one during a move (a lagging watch). */
const VIEW_LAG_MS = Number(process.env['VIEW_LAG_MS'] ?? 500);
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const NODES = [
  { name: 'node-a', ip: '127.0.0.2', pod: '127.0.1.2' },
  { name: 'node-b', ip: '127.0.0.3', pod: '127.0.1.3' },
  { name: 'node-c', ip: '127.0.0.4', pod: '127.0.1.4' },
] as const;
type NodeName = (typeof NODES)[number]['name'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const node = (name: NodeName) => NODES.find((n) => n.name === name) as (typeof NODES)[number];

interface Pod {
  readonly node: NodeName;
  readonly port: number;
  hits: number;
  server: http.Server;
}

/** A pod on `nodeName`'s pod address answering `status` (and counting what it saw). */
async function startPod(nodeName: NodeName, status = 200): Promise<Pod> {
  const pod: Pod = { node: nodeName, port: 0, hits: 0, server: http.createServer() };
  pod.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    pod.hits++;
    req.resume();
    res.statusCode = status;
    res.end(`${nodeName}\n`);
  });
  await new Promise<void>((r) => pod.server.listen(0, node(nodeName).pod, () => r()));
  (pod as { port: number }).port = (pod.server.address() as { port: number }).port;
  return pod;
}

let dir = '';
let ports = { outgoing: 0, incoming: 0, admin: 0 };

/** Replaces one node's view of `service` in one step (rename), as a namer watch would see it. */
async function setView(nodeName: NodeName, service: string, pods: readonly Pod[]): Promise<void> {
  const tmp = join(dir, 'tmp', `${nodeName}-${service}`);
  await writeFile(tmp, pods.map((p) => `${node(p.node).pod} ${p.port} node=${p.node}\n`).join(''));
  await rename(tmp, join(dir, nodeName, service));
}

async function setAllViews(service: string, pods: readonly Pod[]): Promise<void> {
  for (const n of NODES) await setView(n.name, service, pods);
}

function nodeConfig(n: (typeof NODES)[number], ca: string, cert: string, key: string): unknown {
  const dtab = '/svc => /#/io.l5d.fs;';
  return {
    admin: { ip: n.ip, port: ports.admin },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: join(dir, n.name) }],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab,
        identifier: { kind: 'io.l5d.header.token', header: 'Host' },
        interpreter: { transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh' }] },
        servers: [{ ip: n.ip, port: ports.outgoing }],
        client: { tls: { commonName: 'hostmesh', trustCerts: [ca], clientAuth: { certPath: cert, keyPath: key } } },
      },
      {
        protocol: 'http',
        label: 'incoming',
        dtab,
        identifier: { kind: 'io.l5d.header.token', header: 'Host' },
        interpreter: { transformers: [{ kind: 'io.l5d.k8s.localnode' }] },
        servers: [{ ip: n.ip, port: ports.incoming, tls: { certPath: cert, keyPath: key, caCertPath: ca, requireClientAuth: true } }],
      },
    ],
    shutdownGraceMs: 2000,
  };
}

const routers = new Map<NodeName, ChildProcess>();
const configs = new Map<NodeName, string>();

async function ready(nodeName: NodeName, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`http://${node(nodeName).ip}:${ports.admin}/ready`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${nodeName} not ready after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function startRouter(nodeName: NodeName): Promise<void> {
  const child = spawn(process.execPath, [MAIN, 'run', '-c', configs.get(nodeName) as string], {
    env: { ...process.env, NODE_OPTIONS: '', NODE_NAME: nodeName, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (routers.get(nodeName) === child && signal === null && code !== 0) console.error(`${nodeName} exited ${code}: ${err}`);
  });
  routers.set(nodeName, child);
  await ready(nodeName);
}

/** Stops a router with `signal` and resolves once the process has exited. */
async function stopRouter(nodeName: NodeName, signal: NodeJS.Signals): Promise<number | null> {
  const child = routers.get(nodeName) as ChildProcess;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill(signal);
  const [code] = await exited;
  return code;
}

/** Open-loop load: RATE requests a second to node-a's outgoing router until stopped. */
class Load {
  readonly statuses = new Map<string, number>();
  sent = 0;
  failed = 0;
  /** Failures by the phase they were sent in (set by the figure). */
  phase = '';
  readonly failedByPhase = new Map<string, number>();
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  readonly #pending = new Set<Promise<void>>();
  #running = true;
  readonly #loop: Promise<void>;

  constructor(readonly service: string) {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const started = Date.now();
    for (let i = 0; this.#running; i++) {
      const wait = started + (i * 1000) / RATE - Date.now();
      if (wait > 0) await sleep(wait);
      const p = this.#one();
      this.#pending.add(p);
      void p.finally(() => this.#pending.delete(p));
    }
  }

  #one(): Promise<void> {
    this.sent++;
    const phase = this.phase;
    return new Promise((resolve) => {
      const done = (key: string): void => {
        this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
        if (key !== '200') {
          this.failed++;
          this.failedByPhase.set(phase, (this.failedByPhase.get(phase) ?? 0) + 1);
        }
        resolve();
      };
      const req = http.request(
        { host: NODES[0].ip, port: ports.outgoing, path: '/', headers: { host: this.service }, agent: this.#agent, timeout: 10_000 },
        (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode)));
          res.on('error', () => done('response-error'));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      req.end();
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await Promise.all([...this.#pending]);
    this.#agent.destroy();
  }

  summary(): string {
    return [...this.statuses].map(([k, v]) => `${k} x${v}`).join(', ');
  }
}

/** node-a's outgoing requeues so far, by reason (its metrics restart with it). */
async function requeues(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://${NODES[0].ip}:${ports.admin}/metrics`)).text();
  const out = new Map<string, number>();
  for (const s of parsePrometheus(text)) {
    if (s.name === 'hostmesh_requeues_total' && s.labels['router'] === 'outgoing') out.set(s.labels['reason'] ?? '', s.value);
  }
  return out;
}

/** Requeues between two readings, as `reason N, ...`. */
function requeueDelta(before: Map<string, number>, after: Map<string, number>): string {
  const parts = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  return parts.length === 0 ? 'no requeues' : `requeues ${parts.map(([k, v]) => `${k} ${v}`).join(', ')}`;
}

function line(figure: string, measured: string, target: string, ok: boolean): void {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${figure}: ${measured} (target ${target})`);
}

/** Figure 1: a pod moves b -> c (new pod ready on c, then the old one removed), views following in `order`. */
async function podMove(order: readonly NodeName[], label: string): Promise<void> {
  const from = await startPod('node-b');
  const to = await startPod('node-c');
  const service = `move-${label}`;
  await setAllViews(service, [from]);
  await sleep(VIEW_LAG_MS);
  const before = await requeues();
  const load = new Load(service);
  await sleep(1000);
  load.phase = 'add';
  for (const n of order) {
    await setView(n, service, [from, to]);
    await sleep(VIEW_LAG_MS);
  }
  load.phase = 'remove';
  for (const n of order) {
    await setView(n, service, [to]);
    await sleep(VIEW_LAG_MS);
  }
  await sleep(1000);
  load.phase = 'gone';
  // The old pod terminates once every view has dropped it.
  from.server.closeAllConnections();
  from.server.close();
  await sleep(1000);
  await load.stop();
  to.server.closeAllConnections();
  to.server.close();
  line(
    `1. pod moving node-b -> node-c, views updated ${order.join(', ')} (destination ${label}), ${VIEW_LAG_MS} ms apart`,
    `${load.failed} failed of ${load.sent} [${load.summary()}]; old pod ${from.hits}, new pod ${to.hits}; node-a ${requeueDelta(before, await requeues())}`,
    '0 failed',
    load.failed === 0,
  );
}

/** Figure 4: one of three pods answers 500 to everything; default failure accrual. */
async function failingEndpoint(): Promise<void> {
  const good = [await startPod('node-a'), await startPod('node-c')];
  const bad = await startPod('node-b', 500);
  await setAllViews('flaky', [...good, bad]);
  await sleep(VIEW_LAG_MS);
  let sentAtDeath = -1;
  const load = new Load('flaky');
  const watch = setInterval(() => {
    if (sentAtDeath < 0 && bad.hits >= 5) sentAtDeath = load.sent;
  }, 1);
  await sleep(ACCRUAL_SECONDS * 1000);
  await load.stop();
  clearInterval(watch);
  const whileDead = bad.hits - 5;
  const afterDeath = load.sent - Math.max(0, sentAtDeath);
  const share = (100 * whileDead) / Math.max(1, afterDeath);
  line(
    `4. one of three pods (node-b) answering 500 to every request, default failure accrual (consecutiveFailures 5, jittered 5 s..300 s), ${ACCRUAL_SECONDS} s at ${RATE}/s`,
    `${bad.hits} requests reached it, ${whileDead} of ${afterDeath} after its 5th failure = ${share.toFixed(2)}%; client saw ${load.failed} non-200 of ${load.sent} (the 500s relayed before it was dead)`,
    '<= 1% while dead',
    sentAtDeath >= 0 && share <= 1,
  );
  for (const p of [...good, bad]) {
    p.server.closeAllConnections();
    p.server.close();
  }
}

/** Figures 2 and 3: a service with pods on node-b and node-c, routers killed and restarted under load. */
async function routerFailures(): Promise<void> {
  const pods = [await startPod('node-b'), await startPod('node-c')];
  await setAllViews('web', pods);
  await sleep(VIEW_LAG_MS);

  let before = await requeues();
  let load = new Load('web');
  load.phase = 'before';
  await sleep(2000);
  load.phase = 'kill';
  await stopRouter('node-b', 'SIGKILL');
  await sleep(3000);
  await load.stop();
  line(
    '2. node-b router killed (SIGKILL), service on node-b and node-c, client on node-a',
    `${load.failed} failed of ${load.sent} (${load.failedByPhase.get('kill') ?? 0} after the kill) [${load.summary()}]; node-a ${requeueDelta(before, await requeues())}`,
    '0 failed',
    load.failed === 0,
  );
  await startRouter('node-b');

  before = await requeues();
  load = new Load('web');
  load.phase = 'rolling';
  const exits: string[] = [];
  await sleep(1000);
  for (const n of ['node-b', 'node-c'] as const) {
    const t0 = Date.now();
    const code = await stopRouter(n, 'SIGTERM');
    const drained = Date.now() - t0;
    await startRouter(n);
    exits.push(`${n} exit ${code} after ${drained} ms, ready ${Date.now() - t0} ms`);
    await sleep(1000);
  }
  await load.stop();
  line(
    '3. rolling restart (SIGTERM, exit, start, /ready) of node-b then node-c, client on node-a',
    `${load.failed} failed of ${load.sent} [${load.summary()}]; node-a ${requeueDelta(before, await requeues())}; ${exits.join('; ')}`,
    '0 failed',
    load.failed === 0,
  );

  load = new Load('web');
  load.phase = 'own';
  await sleep(1000);
  const t0 = Date.now();
  const code = await stopRouter('node-a', 'SIGTERM');
  const drained = Date.now() - t0;
  await startRouter('node-a');
  const down = Date.now() - t0;
  await sleep(1000);
  await load.stop();
  console.log(
    `INFO 3b. the client's own router (node-a) restarted the same way: ${load.failed} failed of ${load.sent} [${load.summary()}]; exit ${code} after ${drained} ms, ready again ${down} ms after SIGTERM (no target: nothing can requeue for the client)`,
  );
  for (const p of pods) {
    p.server.closeAllConnections();
    p.server.close();
  }
}

async function main(): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-chaos-'));
  const [outgoing, incoming, admin] = (await freePorts(NODES[0].ip, 3)) as [number, number, number];
  ports = { outgoing, incoming, admin };
  const pki = await writeDemoPki(join(dir, 'certs'), 'hostmesh', NODES);
  await mkdir(join(dir, 'tmp'));
  const routerList = NODES.map((n) => `${n.ip} ${incoming} node=${n.name}\n`).join('');
  for (const n of NODES) {
    await mkdir(join(dir, n.name));
    await writeFile(join(dir, n.name, 'hostmesh'), routerList);
    const certs = pki.nodes.get(n.name) as { cert: string; key: string };
    const file = join(dir, `${n.name}.json`);
    await writeFile(file, JSON.stringify(nodeConfig(n, pki.ca, certs.cert, certs.key), null, 2));
    configs.set(n.name, file);
  }
  console.log(
    `chaos: 3 routers (hostmesh run, ${NODES.map((n) => `${n.name} ${n.ip}`).join(', ')}), mTLS between nodes, ${RATE} req/s GET open loop to node-a`,
  );
  try {
    await Promise.all(NODES.map((n) => startRouter(n.name)));
    await podMove(['node-c', 'node-a', 'node-b'], 'first');
    await podMove(['node-b', 'node-a', 'node-c'], 'last');
    await failingEndpoint();
    await routerFailures();
  } finally {
    for (const n of NODES) await stopRouter(n.name, 'SIGKILL').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
