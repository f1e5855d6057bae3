// The admin listener (:9990, on every interface by default) under socket floods: idle and slow
// connections are capped per source and per listener, this host's own connections (probes on a
// hostNetwork node, kubectl port-forward) keep a room of their own, and every state has a deadline.

import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import type { AdminConfig, HostmeshConfig } from '../../src/config/types.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh, type Hostmesh } from '../../src/app/hostmesh.js';
import { ADMIN_SOCKET_DEFAULTS } from '../../src/admin/admin-server.js';
import { SOCKET_DEFAULTS } from '../../src/server/listener.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';
import { promptBound, timed, within } from '../helpers/prompt.js';
import { eventually, heldSockets } from '../helpers/sockets.js';

t.setTimeout(60_000);

const IP = '127.0.0.60';

async function startAdmin(t: Test, admin: Partial<AdminConfig> = {}): Promise<{ mesh: Hostmesh; port: number }> {
  const [proxy, port] = (await freePorts(IP, 2)) as [number, number];
  const config: HostmeshConfig = {
    admin: { ip: IP, port, allowRemoteShutdown: false, ...admin },
    namers: [],
    routers: [
      {
        protocol: 'http',
        label: 'outgoing',
        dtab: '/svc => /$/inet/127.0.0.1/9;',
        identifier: [],
        transformers: [],
        servers: [{ ip: IP, port: proxy }],
        client: { loadBalancer: { kind: 'p2c' } },
        maxHops: 64,
      },
    ],
    shutdownGraceMs: 0,
    baseDir: '/',
  };
  const mesh = await startHostmesh(config, { logger: silentLogger() });
  t.teardown(() => mesh.close(0));
  return { mesh, port };
}

type Kind = 'silent' | 'partial' | 'drip' | 'stalled-body';

interface Attacker {
  readonly socket: net.Socket;
  closed: boolean;
}

/** One hostile connection from `localAddress`; resolves once connected. */
function attack(port: number, kind: Kind, localAddress: string): Promise<Attacker> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: IP, port, localAddress });
    const a: Attacker = { socket, closed: false };
    socket.on('error', () => undefined);
    socket.on('close', () => (a.closed = true));
    socket.resume();
    socket.on('connect', () => {
      if (kind === 'partial') socket.write(`GET /admin/ping HTTP/1.1\r\nHost: ${IP}\r\nX-Slow: `);
      if (kind === 'drip') {
        const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write('a')), 50);
        socket.write(`GET /admin/ping HTTP/1.1\r\nHost: ${IP}\r\nX-Drip: `);
        socket.once('close', () => clearInterval(timer));
      }
      // Headers complete, then a body that never comes: only the idle deadline applies.
      if (kind === 'stalled-body') socket.write(`POST /delegator.json HTTP/1.1\r\nHost: ${IP}\r\ncontent-length: 1000\r\n\r\n{"path":`);
      resolve(a);
    });
    // A connection refused by a cap is closed at once; resolve then too.
    socket.once('close', () => resolve(a));
  });
}

async function flood(port: number, n: number, sources: readonly string[], kinds: readonly Kind[] = ['silent', 'partial', 'drip']): Promise<Attacker[]> {
  const out: Attacker[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 50); k++) batch.push(attack(port, kinds[k % kinds.length] as Kind, sources[k % sources.length] as string));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Status of GET `path` on the admin from `localAddress`, or an error text. */
async function get(port: number, path: string, localAddress: string): Promise<number | string> {
  try {
    const r = await request({ host: IP, port, path, localAddress, agent: false });
    return r.status;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * "Within 1 s" that a busy machine cannot trip: ping on this admin before the flood, timed; the
 * bound is 10x that (at least 2 s, at most 5 s: a request starved behind the flood waits out its
 * connections' headers deadline, 20 s by default, or is refused). The ping's socket is gone before
 * the flood, so the caps count the flood only.
 */
async function adminBound(port: number): Promise<number> {
  const base = await timed(() => get(port, '/admin/ping', IP));
  if (base.value !== 200) throw new Error(`ping before the flood: ${base.value}`);
  if (!(await eventually(() => heldSockets(IP, port) === 0, 5000))) throw new Error('the ping left a socket open');
  return promptBound(base.ms, 2000, 5000);
}

/** Status of GET `path` on the admin from `localAddress`, or an error text; `boundMs` at most. */
function within1s(port: number, path: string, localAddress: string, boundMs: number): Promise<number | string> {
  return within(get(port, path, localAddress), boundMs, `no answer within ${boundMs} ms`);
}

function counter(mesh: Hostmesh, name: string, labels: Record<string, string>): number {
  const metric = mesh.metrics.registry.getSingleMetric(name) as unknown as
    | { hashMap?: Record<string, { labels: Record<string, string>; value: number }> }
    | undefined;
  let sum = 0;
  for (const v of Object.values(metric?.hashMap ?? {})) if (Object.entries(labels).every(([k, want]) => v.labels[k] === want)) sum += v.value;
  return sum;
}

const sources = (from: number, n: number): string[] => Array.from({ length: n }, (_, i) => `127.0.0.${from + i}`);

t.test('1,000 idle and slow connections (defaults): sockets held per source are capped; ping and ready answer within 1 s', async (t) => {
  const { mesh, port } = await startAdmin(t);
  const bound = await adminBound(port);
  const attackers = await flood(port, 1000, sources(61, 4));
  t.teardown(() => attackers.forEach((a) => a.socket.destroy()));
  const perSource = ADMIN_SOCKET_DEFAULTS.maxConnectionsPerSource;
  const refused = (): number => counter(mesh, 'hostmesh_connections_refused_total', { router: 'admin', reason: 'source_limit' });
  // Settled, not sampled once: on a loaded machine some of the 1,000 connects wait for a SYN retry
  // (the listen backlog was full), and a socket being closed can show in /proc for a moment.
  t.ok(
    await eventually(() => attackers.filter((a) => a.closed).length === 1000 - 4 * perSource && heldSockets(IP, port) === 4 * perSource, 5000),
    `each source is held to ${perSource}: ${heldSockets(IP, port)} held, ${attackers.filter((a) => a.closed).length} closed`,
  );
  t.ok(heldSockets(IP, port) <= 4 * perSource, 'never more than the cap for each source');
  t.ok(await eventually(() => refused() === 1000 - 4 * perSource, 2000), `refusals are counted (${refused()})`);
  t.equal(await within1s(port, '/admin/ping', '127.0.0.70', bound), 200, 'ping from another source');
  t.equal(await within1s(port, '/ready', '127.0.0.70', bound), 200, 'ready from another source');
  t.equal(await within1s(port, '/admin/ping', IP, bound), 200, 'ping from this host');
  t.ok(heldSockets(IP, port) >= 4 * perSource, `answered while the flood still held its sockets (${heldSockets(IP, port)})`);
});

t.test('a full admin listener still answers this host (kubelet on a hostNetwork node, port-forward)', async (t) => {
  const { mesh, port } = await startAdmin(t, { maxConnections: 50, maxConnectionsPerSource: 20 });
  const bound = await adminBound(port);
  const attackers = await flood(port, 1000, sources(71, 10));
  t.teardown(() => attackers.forEach((a) => a.socket.destroy()));
  t.ok(
    await eventually(() => attackers.filter((a) => a.closed).length === 950 && heldSockets(IP, port) === 50, 5000),
    `held to the listener cap: ${heldSockets(IP, port)} held, ${attackers.filter((a) => a.closed).length} closed`,
  );
  t.ok(counter(mesh, 'hostmesh_connections_refused_total', { router: 'admin', reason: 'listener_limit' }) > 0, 'listener refusals are counted');
  t.equal(await within1s(port, '/admin/ping', IP, bound), 200, 'ping from this host within 1 s');
  t.equal(await within1s(port, '/ready', IP, bound), 200, 'ready from this host within 1 s');
  t.ok(heldSockets(IP, port) >= 50, `answered while the flood still held the listener full (${heldSockets(IP, port)})`);
  attackers.forEach((a) => a.socket.destroy());
  t.ok(await eventually(() => heldSockets(IP, port) === 0, 2000), 'the flood gone, nothing is held');
  t.equal(await within1s(port, '/admin/ping', '127.0.0.71', bound), 200, 'a refused source is served again');
});

t.test('silent, partial and dripping connections are closed at admin.headersTimeoutMs; a stalled body at admin.idleTimeoutMs', async (t) => {
  const { mesh, port } = await startAdmin(t, { headersTimeoutMs: 300, idleTimeoutMs: 600 });
  const bound = await adminBound(port);
  const slow = await flood(port, 30, sources(81, 3));
  const stalled = await flood(port, 5, ['127.0.0.84'], ['stalled-body']);
  t.ok(await eventually(() => slow.every((a) => a.closed), 2000), 'every slow connection was closed by the admin');
  t.ok(await eventually(() => stalled.every((a) => a.closed), 2500), 'every stalled body was closed by the admin');
  t.ok(await eventually(() => heldSockets(IP, port) === 0, 2000), `nothing is held (${heldSockets(IP, port)})`);
  t.ok(counter(mesh, 'hostmesh_connection_deadlines_total', { router: 'admin', state: 'headers' }) >= 30, 'headers deadlines are counted');
  t.equal(counter(mesh, 'hostmesh_connection_deadlines_total', { router: 'admin', state: 'idle' }), 5, 'idle deadlines are counted');
  t.equal(await within1s(port, '/admin/ping', '127.0.0.81', bound), 200);
});

t.test('a normal keep-alive client is not cut by the deadlines between requests', async (t) => {
  const { port } = await startAdmin(t, { headersTimeoutMs: 300, idleTimeoutMs: 600 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (let i = 0; i < 3; i++) {
    const r = await request({ host: IP, port, path: '/admin/ping', agent, timeout: 1000 });
    t.equal(r.status, 200);
    await new Promise((r) => setTimeout(r, 100));
  }
});

t.test('the admin keys: defaults, validation with file:line:col', async (t) => {
  t.same(ADMIN_SOCKET_DEFAULTS, {
    headersTimeoutMs: SOCKET_DEFAULTS.headersTimeoutMs,
    idleTimeoutMs: SOCKET_DEFAULTS.idleTimeoutMs,
    maxConnections: 1000,
    maxConnectionsPerSource: 100,
  });
  const base = 'routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers:\n  - port: 4140\n';
  const { config } = parseConfig(
    `admin:\n  headersTimeoutMs: 5000\n  idleTimeoutMs: 60000\n  maxConnections: 200\n  maxConnectionsPerSource: 20\n${base}`,
    'l5d.yaml',
  );
  t.match(config.admin, { headersTimeoutMs: 5000, idleTimeoutMs: 60_000, maxConnections: 200, maxConnectionsPerSource: 20 });
  t.equal(parseConfig(base, 'l5d.yaml').config.admin.maxConnections, undefined, 'unset: the admin defaults apply');
  for (const [line, where] of [
    ['  maxConnections: 0', /l5d\.yaml:2:19: .*maxConnections/],
    ['  maxConnectionsPerSource: 2.5', /l5d\.yaml:2:28: .*maxConnectionsPerSource/],
    ['  headersTimeoutMs: 10', /l5d\.yaml:2:21: .*headersTimeoutMs/],
    ['  idleTimeoutMs: 5', /l5d\.yaml:2:18: .*idleTimeoutMs/],
    ['  maxConnection: 10', /l5d\.yaml:2:3: .*maxConnection.*unknown key/],
  ] as const) {
    try {
      parseConfig(`admin:\n${line}\n${base}`, 'l5d.yaml');
      t.fail(`${line} was accepted`);
    } catch (err) {
      t.type(err, ConfigError);
      t.match((err as ConfigError).problems.join('\n'), where, line);
    }
  }
});
