// One pod cannot starve a node's links: slow uploads, silent and stalling backends, and a full
// queue, through two routers over mTLS, each while a normal request from another source is served.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ClientConfig, HostmeshConfig, RouterConfig } from '../../src/config/types.js';
import { MESH_NAME } from '../../src/demo/demo.js';
import { writeDemoPki } from '../../src/demo/demo-pki.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { A, B, listen } from '../helpers/mesh.js';
import { freePorts } from '../helpers/ports.js';
import { promptBound } from '../helpers/prompt.js';
import { eventually } from '../helpers/sockets.js';

t.setTimeout(60_000);

/** Small limits so the attacks fit in a test; the same code paths as the defaults. */
const LIMITS: Omit<ClientConfig, 'loadBalancer' | 'tls'> = {
  hostConnectionPool: { maxSize: 8, maxWaiters: 4 },
  maxInFlightPerSource: 4,
  maxInFlightPerService: 6,
  maxWaitMs: 1500,
  headersTimeoutMs: 500,
  bodyIdleTimeoutMs: 500,
  requestBodyIdleTimeoutMs: 1000,
};
const POOL = 8;

// Pods stand in as distinct loopback source addresses.
const ATTACKER = '127.0.0.10';
const NORMAL = '127.0.0.11';

let meshes: Hostmesh[] = [];
let outgoing = 0;
let dir = '';
const sockets = new Set<import('node:net').Socket>();
const servers: http.Server[] = [];
/** Uploads the upload backend has begun and not yet answered (an attack holding its slots). */
let uploadsAtBackend = 0;

/** A backend on node-b registered in the fs namer under `names`. */
async function backend(names: string[], handler: http.RequestListener): Promise<void> {
  const server = http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await listen(server, B);
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  for (const name of names) await writeFile(join(dir, 'disco', name), `${B} ${port} node=node-b\n`);
}

t.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostmesh-pool-'));
  await mkdir(join(dir, 'disco'));
  const [out, incoming, admin] = (await freePorts(A, 3)) as [number, number, number];
  outgoing = out;
  // fast: answers at once. upload: answers once the whole body arrived. silent: never answers.
  // stall: sends headers and a first chunk, then nothing.
  await backend(['fast'], (req, res) => {
    req.resume();
    req.on('end', () => res.end('fast\n'));
  });
  await backend(['upload', 'upload2'], (req, res) => {
    let n = 0;
    uploadsAtBackend++;
    res.once('close', () => uploadsAtBackend--);
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`got ${n}\n`));
  });
  await backend(['silent'], (req) => req.resume());
  await backend(['stall'], (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first chunk\n');
  });
  const nodes = [
    { name: 'node-a', ip: A },
    { name: 'node-b', ip: B },
  ];
  await writeFile(join(dir, 'disco', 'hostmesh'), nodes.map((n) => `${n.ip} ${incoming} node=${n.name}`).join('\n') + '\n');
  const pki = await writeDemoPki(join(dir, 'certs'), MESH_NAME, nodes);
  for (const node of nodes) {
    const certs = pki.nodes.get(node.name) as { cert: string; key: string };
    const base = {
      protocol: 'http' as const,
      dtab: '/svc => /#/io.l5d.fs;',
      identifier: [{ kind: 'io.l5d.header.token' as const, header: 'Host' }],
      maxHops: 64,
    };
    const out: RouterConfig = {
      ...base,
      label: 'outgoing',
      transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh' }],
      servers: [{ ip: node.ip, port: outgoing }],
      client: {
        loadBalancer: { kind: 'p2c' },
        tls: { commonName: MESH_NAME, trustCerts: [pki.ca], clientAuth: { certPath: certs.cert, keyPath: certs.key } },
        ...LIMITS,
      },
    };
    const inc: RouterConfig = {
      ...base,
      label: 'incoming',
      transformers: [{ kind: 'io.l5d.k8s.localnode' }],
      servers: [{ ip: node.ip, port: incoming, tls: { certPath: certs.cert, keyPath: certs.key, caCertPath: pki.ca, requireClientAuth: true } }],
      client: { loadBalancer: { kind: 'p2c' }, ...LIMITS },
    };
    const config: HostmeshConfig = {
      admin: { ip: node.ip, port: admin, allowRemoteShutdown: false },
      namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: join(dir, 'disco') }],
      routers: [out, inc],
      nodeName: node.name,
      shutdownGraceMs: 0,
      baseDir: dir,
    };
    meshes.push(await startHostmesh(config, { logger: silentLogger() }));
  }
});

t.teardown(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(meshes.map((m) => m.close(0)));
  meshes = [];
  for (const s of servers) {
    s.close();
    s.closeAllConnections();
  }
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The response ended normally (false: cut, or still open at the guard). */
  complete: boolean;
  ms: number;
}

/**
 * One request from `source` through node-a's outgoing router; resolves with what the client saw
 * by `guardMs` at the latest (status 0: nothing yet).
 */
function call(source: string, name: string, options: { method?: string; body?: string; guardMs?: number } = {}): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    let answer: Answer = { status: 0, headers: {}, body: '', complete: false, ms: 0 };
    const finish = (): void => {
      clearTimeout(guard);
      answer.ms = performance.now() - started;
      req.destroy();
      resolve(answer);
    };
    const guard = setTimeout(finish, options.guardMs ?? 5000);
    const req = http.request(
      { host: A, port: outgoing, localAddress: source, path: `http://${name}/`, method: options.method ?? 'GET', agent: false },
      (res) => {
        answer = { ...answer, status: res.statusCode ?? 0, headers: res.headers };
        res.setEncoding('utf8');
        res.on('data', (c: string) => (answer.body += c));
        res.on('end', () => {
          answer.complete = true;
          finish();
        });
        res.on('aborted', finish);
        res.on('error', finish);
      },
    );
    req.on('error', finish);
    req.end(options.body);
  });
}

/**
 * A slow upload from `source`: one byte each 200 ms of a 1,000-byte body, until stopped (so about
 * 200 s if never stopped). `answered` turns true once the client saw an answer or an error.
 */
function slowUpload(source: string, name: string): { answer: Promise<Answer>; stop: () => void; readonly answered: boolean } {
  let stop = (): void => undefined;
  let answered = false;
  const answer = new Promise<Answer>((resolve) => {
    const started = performance.now();
    const req = http.request({
      host: A,
      port: outgoing,
      localAddress: source,
      path: `http://${name}/`,
      method: 'POST',
      agent: false,
      headers: { 'content-length': '1000' },
    });
    const drip = setInterval(() => req.write('x'), 200);
    let done = false;
    const finish = (a: Partial<Answer>): void => {
      if (done) return;
      done = true;
      answered = true;
      clearInterval(drip);
      req.destroy();
      resolve({ status: 0, headers: {}, body: '', complete: false, ms: performance.now() - started, ...a });
    };
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => finish({ status: res.statusCode ?? 0, headers: res.headers, body, complete: true }));
    });
    req.on('error', () => finish({}));
    req.write('x');
    stop = () => finish({});
  });
  return {
    answer,
    stop,
    get answered() {
      return answered;
    },
  };
}

/**
 * Requests in flight or waiting on every endpoint pool of both nodes, or of one (what a released
 * slot shows as). Each router's endpoint once, however many bound names share it.
 */
function inFlight(only?: Hostmesh): number {
  let n = 0;
  for (const m of only === undefined ? meshes : [only]) {
    for (const r of m.routers) {
      const load = new Map<string, number>();
      for (const c of r.router.clientState()) for (const e of c.endpoints) load.set(e.address, e.inFlight);
      for (const v of load.values()) n += v;
    }
  }
  return n;
}

/**
 * A normal request measured before an attack: the bound the same request must meet during it
 * (promptBound: 10x this, at least `floorMs`), so a busy machine slows both and the check does not
 * flake, while a starved request (shed at the 1.5 s wait bound, or waiting on a 200 s upload) fails.
 */
async function baseline(name: string, floorMs: number, options: { method?: string; body?: string } = {}): Promise<number> {
  const a = await call(NORMAL, name, options);
  if (a.status !== 200) throw new Error(`baseline ${name}: ${a.status}`);
  return promptBound(a.ms, floorMs);
}

async function settled(): Promise<number> {
  const deadline = Date.now() + 5000;
  while (inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return inFlight();
}

async function metric(name: string): Promise<string> {
  const text = await (meshes[0] as Hostmesh).metrics.prometheus();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

// "Within 1 s" is shown without a stopwatch that a busy machine trips: a starved request is shed
// with 503 at the 1.5 s wait bound (the status says so) or waits for an upload that takes 200 s (the
// uploads still unanswered after the normal answer say it did not); the time bound is 10x the same
// request just before the attack, at least 3 s.
t.test('64 slow uploads from one pod do not starve other pods, nor its own service', async (t) => {
  // Warm both services so the test measures the attack, not the first binding.
  t.equal((await call(NORMAL, 'fast')).status, 200);
  t.equal((await call(NORMAL, 'upload', { method: 'POST', body: 'hi' })).status, 200);
  const fastBound = await baseline('fast', 3000);
  const uploadBound = await baseline('upload', 3000, { method: 'POST', body: 'hi' });
  const uploads = Array.from({ length: 64 }, () => slowUpload(ATTACKER, 'upload'));
  // The attack is on: the source's share (4) of uploads is at the backend, its excess shed or waiting.
  t.ok(await eventually(() => uploadsAtBackend >= 4, 10_000), `the attacker's uploads reached the backend (${uploadsAtBackend})`);
  const attacking = (): number => uploads.filter((u) => !u.answered).length;
  const other = await call(NORMAL, 'fast', { guardMs: fastBound });
  t.equal(other.status, 200, `another service answers within 1 s under attack (${other.ms.toFixed(0)} ms; bound ${fastBound} ms, 10x before the attack)`);
  t.ok(other.complete);
  t.ok(
    uploadsAtBackend >= 4 && attacking() >= 4,
    `answered while the attack held its slots (${uploadsAtBackend} uploads at the backend, ${attacking()} unanswered)`,
  );
  const same = await call(NORMAL, 'upload', { method: 'POST', body: 'hello', guardMs: uploadBound });
  t.equal(same.status, 200, `the attacked service answers another pod within 1 s (${same.ms.toFixed(0)} ms; bound ${uploadBound} ms, 10x before the attack)`);
  t.equal(same.body, 'got 5\n');
  t.ok(
    uploadsAtBackend >= 4 && attacking() >= 4,
    `answered while the attack held its slots (${uploadsAtBackend} uploads at the backend, ${attacking()} unanswered)`,
  );
  t.ok(inFlight() <= 2 * POOL, `pools stay within their bounds (${inFlight()} in flight)`);
  const open = (meshes[0] as Hostmesh).metrics.routers.get('outgoing')?.listener.connectionsOpen.client ?? -1;
  t.ok(open <= POOL, `node-a holds at most the pool's ${POOL} connections to node-b (${open})`);
  // The attacker's excess is shed with 503 and l5d-err, at once or after the wait bound.
  const shed = await Promise.race([uploads[63]?.answer, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))]);
  t.equal(shed?.status, 503, 'an upload over the limits is shed');
  t.match(shed?.headers['l5d-err'], /./, 'with l5d-err');
  for (const u of uploads) u.stop();
  t.equal(await settled(), 0, 'every slot is released when the uploads go away');
  t.match(await metric('hostmesh_requests_shed_total'), /reason="queue_full"|reason="source_queue_full"/);
});

t.test('a backend that never sends headers: 503 with l5d-err after the headers timeout', async (t) => {
  const bound = await baseline('fast', 3000);
  const r = await call(NORMAL, 'silent', { guardMs: 4000 });
  t.equal(r.status, 503);
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), /did not answer within 500 ms/);
  t.ok(r.ms < 3000, `answered after ${r.ms.toFixed(0)} ms (headers timeout 500 ms)`);
  t.equal(await settled(), 0, 'the slot is released');
  t.match(await metric('hostmesh_upstream_timeouts_total'), /kind="headers"/);
  const ok = await call(NORMAL, 'fast', { guardMs: bound });
  t.equal(ok.status, 200, `and a normal request is served within 1 s (${ok.ms.toFixed(0)} ms; bound ${bound} ms, 10x before the silent backend)`);
});

t.test('a backend that stalls mid-body: the response is cut and the slots are freed', async (t) => {
  // More stalled responses than the pool has connections: each is cut after the idle timeout,
  // so none keeps a slot.
  const answers = await Promise.all(Array.from({ length: POOL + 2 }, (_, i) => call(i % 2 === 0 ? NORMAL : '127.0.0.12', 'stall', { guardMs: 5000 })));
  for (const a of answers.filter((x) => x.status === 200)) {
    t.equal(a.body.startsWith('first chunk'), true, 'the first chunk arrived');
    t.equal(a.complete, false, 'the response was cut, not ended as if complete');
    t.ok(a.ms < 4000, `cut after ${a.ms.toFixed(0)} ms (idle body timeout 500 ms)`);
  }
  t.ok(answers.filter((x) => x.status === 200).length >= 4, 'stalled responses started');
  t.ok(
    answers.every((x) => x.status === 200 || x.status === 503),
    'the others were shed',
  );
  t.equal(await settled(), 0, 'the slots are released');
  t.match(await metric('hostmesh_upstream_timeouts_total'), /kind="response_body_idle"/);
  const ok = await call(NORMAL, 'stall', { guardMs: 3000 });
  t.equal(ok.status, 200, 'the stalling service still gets new requests');
});

t.test('a request body that stops: 408 with l5d-err after the idle timeout', async (t) => {
  const started = performance.now();
  const r = await new Promise<Answer>((resolve) => {
    const req = http.request({
      host: A,
      port: outgoing,
      localAddress: NORMAL,
      path: 'http://upload/',
      method: 'POST',
      agent: false,
      headers: { 'content-length': '100' },
    });
    const guard = setTimeout(() => {
      req.destroy();
      resolve({ status: 0, headers: {}, body: '', complete: false, ms: performance.now() - started });
    }, 5000);
    req.on('response', (res) => {
      clearTimeout(guard);
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '', complete: true, ms: performance.now() - started });
      req.destroy();
    });
    req.on('error', () => undefined);
    req.write('0123456789');
  });
  t.equal(r.status, 408);
  t.match(decodeURIComponent(String(r.headers['l5d-err'])), /request body made no progress/);
  t.ok(r.ms < 4000, `answered after ${r.ms.toFixed(0)} ms (idle timeout 1,000 ms)`);
  t.equal(await settled(), 0, 'the slot is released');
});

t.test('more waiters than the queue bound: shed with 503 at once, waiters shed at the wait bound', async (t) => {
  const bound = await baseline('fast', 3000);
  // Fill node-a's pool to node-b (8): two sources, two services, 4 slow uploads each.
  const fill = [...Array.from({ length: 4 }, () => slowUpload(ATTACKER, 'upload')), ...Array.from({ length: 4 }, () => slowUpload('127.0.0.13', 'upload2'))];
  t.ok(await eventually(() => uploadsAtBackend === 8, 10_000), `the pool is full: 8 uploads at the backend (${uploadsAtBackend})`);
  // Two more sources' requests wait, each up to its share of the queue (half of 4 waiters).
  let shedWaiters = 0;
  const waiting = Array.from({ length: 4 }, (_, i) =>
    call(i % 2 === 0 ? '127.0.0.14' : '127.0.0.16', 'fast', { guardMs: 5000 }).then((a) => {
      shedWaiters++;
      return a;
    }),
  );
  // node-a's load: the 8 uploads in flight and the 4 waiters.
  t.ok(await eventually(() => inFlight(meshes[0]) === 12, 10_000), `the queue is full: 4 waiting (node-a's load ${inFlight(meshes[0])})`);
  // "At once", shown by order and reason rather than a stopwatch: shed for the queue bound (a
  // request that waited would say "no slot within 1500 ms"), before any waiter's wait ran out.
  const over = await call('127.0.0.15', 'fast', { guardMs: 5000 });
  const waitersLeft = 4 - shedWaiters;
  t.equal(over.status, 503, `the request past the queue bound is shed at once (${over.ms.toFixed(0)} ms)`);
  t.match(decodeURIComponent(String(over.headers['l5d-err'])), /queue/);
  t.match(decodeURIComponent(String(over.headers['l5d-err'])), /waiting \(queue bound\)$/, 'shed for the queue bound, without waiting for a slot');
  t.equal(waitersLeft, 4, 'answered while every waiter still waited');
  const waited = await Promise.all(waiting);
  for (const w of waited) {
    t.equal(w.status, 503, 'a waiter is shed at the wait bound');
    t.match(decodeURIComponent(String(w.headers['l5d-err'])), /^endpoint busy: no slot within 1500 ms/, 'l5d-err says it waited out the bound');
    t.ok(w.ms >= 1000, `after ${w.ms.toFixed(0)} ms (maxWaitMs 1,500)`);
  }
  t.match(await metric('hostmesh_requests_shed_total'), /reason="wait_timeout"/);
  for (const u of fill) u.stop();
  t.equal(await settled(), 0);
  const ok = await call(NORMAL, 'fast', { guardMs: bound });
  t.equal(ok.status, 200, `served within 1 s once the attack stops (${ok.ms.toFixed(0)} ms; bound ${bound} ms, 10x before the attack)`);
});
