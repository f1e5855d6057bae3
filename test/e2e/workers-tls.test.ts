// `workers: 2` on an mTLS incoming port: each worker verifies client certificates itself. Requests
// with a mesh certificate reach the app through both workers (each worker's own connections to the
// app, read from /proc); connections without one are refused, whichever worker takes them, and
// /metrics counts every refusal once.

import '../helpers/test-keys.js';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { createCa, issueNodeCertificate } from '../../src/tls/generate.js';
import { spawnCli } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { freePorts } from '../helpers/ports.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const IP = '127.0.0.54';
const dir = await mkdtemp(join(tmpdir(), 'hostmesh-workers-tls-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const ca = createCa({ commonName: 'test CA', days: 1 });
const node = issueNodeCertificate(ca, 'hostmesh', { name: 'node-1', ip: IP }, 1);
const peer = issueNodeCertificate(ca, 'hostmesh', { name: 'node-2' }, 1);
await writeFile(join(dir, 'ca.pem'), ca.certPem);
await writeFile(join(dir, 'cert.pem'), node.certPem);
await writeFile(join(dir, 'key.pem'), node.keyPem);

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The process among `pids` holding the client side of the loopback connection from `port`. */
function ownerOfClientPort(port: number, pids: readonly number[]): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hexPort}`) && f[9] !== undefined && f[9] !== '0') inodes.add(f[9]);
  }
  return pids.find((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          return m?.[1] !== undefined && inodes.has(m[1]);
        } catch {
          return false;
        }
      });
    } catch {
      return false;
    }
  });
}

function call(port: number, withCertificate: boolean): Promise<string> {
  return new Promise((resolve) => {
    https
      .get(
        {
          host: IP,
          port,
          path: '/',
          headers: { host: 'web' },
          agent: false,
          ca: ca.certPem,
          ...(withCertificate ? { cert: peer.certPem, key: peer.keyPem } : {}),
          servername: 'hostmesh',
          checkServerIdentity: (_h, c) => tls.checkServerIdentity('hostmesh', c),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(`${res.statusCode} ${body}`));
          res.on('error', () => resolve('refused'));
        },
      )
      .on('error', () => resolve('refused'));
  });
}

t.test('workers: 2 on an mTLS port: both workers serve mesh peers, and refuse clients without a certificate', async (t) => {
  const sources = new Set<number>();
  let hits = 0;
  const app = http.createServer((req, res) => {
    hits++;
    sources.add(req.socket.remotePort ?? 0);
    res.end('app');
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => {
    app.closeAllConnections();
    app.close();
  });
  const appPort = (app.address() as net.AddressInfo).port;
  const [port, admin] = (await freePorts(IP, 2)) as [number, number];
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `
admin: {ip: ${IP}, port: ${admin}}
nodeName: node-1
workers: 2
drainAnnounceMs: 0
routers:
- protocol: http
  label: incoming
  dtab: /svc => /$/inet/127.0.0.1/${appPort};
  servers:
  - {port: ${port}, ip: ${IP}, tls: {certPath: cert.pem, keyPath: key.pem, caCertPath: ca.pem, requireClientAuth: true}}
`,
  );
  const primary = spawnCli(['run', '-c', file]);
  let stderr = '';
  primary.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  let exited = false;
  primary.once('exit', () => (exited = true));
  let workers: number[] = [];
  t.teardown(() => {
    if (!t.passing()) t.comment(stderr.slice(-6000));
    if (!exited) primary.kill('SIGKILL');
    for (const w of workers) {
      try {
        process.kill(w, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const pid = primary.pid ?? 0;
  const scrape = async (): Promise<ReturnType<typeof parsePrometheus>> => {
    const r = await request({ host: IP, port: admin, path: '/metrics' }).catch(() => undefined);
    return r?.status === 200 ? parsePrometheus(r.body) : [];
  };
  const running = async (): Promise<number> => (await scrape()).find((s) => s.name === 'hostmesh_workers_running')?.value ?? 0;
  for (let i = 0; i < 600 && (await running()) !== 2; i++) await new Promise((r) => setTimeout(r, 50));
  workers = children(pid);
  t.equal(workers.length, 2, 'two workers serving');

  const before = (await scrape()).filter((s) => s.name === 'hostmesh_tls_handshake_failures_total').reduce((n, s) => n + s.value, 0);
  const peers = await Promise.all(Array.from({ length: 8 }, () => call(port, true)));
  t.same(peers, Array(8).fill('200 app'), 'every request with a mesh certificate is answered');
  const owners = new Set([...sources].map((p) => ownerOfClientPort(p, workers)));
  t.same([...owners].sort(), [...workers].sort(), 'both workers served mTLS requests');
  const served = hits;
  const strangers = await Promise.all(Array.from({ length: 8 }, () => call(port, false)));
  t.same(strangers, Array(8).fill('refused'), 'every connection without a client certificate is refused');
  t.equal(hits, served, 'no request of a stranger reached the app');
  const after = (await scrape()).filter((s) => s.name === 'hostmesh_tls_handshake_failures_total').reduce((n, s) => n + s.value, 0);
  t.equal(after - before, 8, '/metrics counts each refusal once, across both workers');
});
