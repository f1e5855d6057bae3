// The admin server (:9990): liveness, readiness, config, delegation explanations and shutdown,
// as Linkerd 1's admin paths. Metrics and the dashboard extend the same path table.

import http from 'node:http';
import { BlockList, isIP, type AddressInfo, type Socket } from 'node:net';
import { parseCidr } from '../identity/source-guard.js';
import { networkInterfaces } from 'node:os';
import { Dtab } from '../dtab/dtab.js';
import { DtabParseError, parsePath } from '../dtab/parse.js';
import type { Logger } from '../log.js';
import { delegateJson } from '../namer/delegate-tree.js';
import type { EvalStats, NameInterpreter } from '../namer/interpreter.js';
import type { Router } from '../router/router.js';
import type { Metrics } from '../metrics/metrics.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { serviceRows } from './resilience-view.js';
import { checkAdminRequest, type AdminRefusal, type HostRules } from './admin-guard.js';
import { HostmeshError } from '../errors.js';
import { parserError, rescue, rescueRaw } from '../server/rescue.js';
import { Connections } from '../server/connections.js';
import { SOCKET_DEFAULTS } from '../server/listener.js';
import type { ConnectionState } from '../server/events.js';

/**
 * Socket limits of the admin listener (admin.* keys). The deadlines are the routers' servers'; the
 * caps are smaller, since probes, Prometheus and an operator need a handful of connections.
 */
export const ADMIN_SOCKET_DEFAULTS = {
  headersTimeoutMs: SOCKET_DEFAULTS.headersTimeoutMs,
  idleTimeoutMs: SOCKET_DEFAULTS.idleTimeoutMs,
  maxConnections: 1_000,
  maxConnectionsPerSource: 100,
} as const;

/** The `router` label the admin listener's socket metrics carry (it is no router: a fixed value). */
const ADMIN_LABEL = 'admin';

/** The admin listener's settings (config/ maps the YAML `admin` block onto it). */
export interface AdminSpec {
  readonly ip: string;
  readonly port: number;
  readonly allowRemoteShutdown: boolean;
  /** Host names answered besides loopback names and this host's addresses (DNS rebinding guard). */
  readonly allowedHosts?: readonly string[] | undefined;
  /** Sources besides this host that may read config, topology and the dashboard. */
  readonly allowedSourceCidrs?: readonly string[] | undefined;
  readonly headersTimeoutMs?: number | undefined;
  readonly idleTimeoutMs?: number | undefined;
  readonly maxConnections?: number | undefined;
  readonly maxConnectionsPerSource?: number | undefined;
}

export interface AdminContext {
  readonly routers: readonly { label: string; router: Router }[];
  readonly interpreter: NameInterpreter;
  /** The running config: its `admin` block, and the whole of it served as /config.json. */
  readonly config: { readonly admin: AdminSpec };
  readonly metrics?: Metrics;
  shutdown(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>;

export interface RouteOptions {
  /**
   * The path changes the router's state (shutdown, anything added later): every method but GET
   * and HEAD needs the hostmesh-admin header and is refused on requests a router forwarded.
   */
  readonly changesState?: boolean;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The one JSON answer of the admin's pages (pretty, with its length). */
export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value, null, 2) + '\n', 'application/json');
}

/** Open to every source: the kubelet's probes and Prometheus. The rest needs a trusted source. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/admin/ping', '/ready', '/metrics', '/admin/metrics/prometheus', '/admin/metrics.json']);

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'));
}

/** Delegation nodes past which /delegator.json is sent without indentation. */
const LARGE_EXPLANATION = 1000;

async function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class AdminServer {
  ready = false;
  /** Further readiness conditions (namers synced); /ready is 200 only when both hold. */
  readyCheck: () => boolean = () => true;
  readonly #ctx: AdminContext;
  readonly #logger: Logger;
  readonly #server: http.Server;
  readonly #paths = new Map<string, { handler: Handler; changesState: boolean }>();
  readonly #hostRules: HostRules;
  /** admin.allowedSourceCidrs: further sources of the non-public pages. */
  readonly #allowedSources = new BlockList();
  /** Connections from this host itself (probes on a hostNetwork node, port-forward, curl on the node). */
  readonly #own: Connections;
  /** Every other connection (pods, other nodes). */
  readonly #others: Connections;

  constructor(ctx: AdminContext, logger: Logger) {
    this.#ctx = ctx;
    this.#logger = logger;
    this.#hostRules = {
      adminIp: ctx.config.admin.ip,
      localAddresses: () => Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
      allowedHosts: ctx.config.admin.allowedHosts ?? [],
    };
    const admin = ctx.config.admin;
    for (const cidr of admin.allowedSourceCidrs ?? []) {
      const c = parseCidr(cidr);
      this.#allowedSources.addSubnet(c.address, c.prefix, c.family);
    }
    const headersTimeout = admin.headersTimeoutMs ?? ADMIN_SOCKET_DEFAULTS.headersTimeoutMs;
    const idleTimeout = admin.idleTimeoutMs ?? ADMIN_SOCKET_DEFAULTS.idleTimeoutMs;
    this.#server = http.createServer(
      {
        headersTimeout,
        // A whole admin request (bodies are at most 64 KB) within Node's 5 minutes, never less than its headers.
        requestTimeout: Math.max(300_000, headersTimeout),
        keepAliveTimeout: Math.min(5_000, idleTimeout),
        // Node checks headersTimeout on this interval; fine enough for short configured values.
        connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(headersTimeout / 4))),
      },
      (req, res) => this.#dispatch(req, res),
    );
    const limits = {
      max: admin.maxConnections ?? ADMIN_SOCKET_DEFAULTS.maxConnections,
      perSource: admin.maxConnectionsPerSource ?? ADMIN_SOCKET_DEFAULTS.maxConnectionsPerSource,
    };
    this.#own = new Connections(limits);
    this.#others = new Connections(limits);
    this.#limitSockets(headersTimeout, idleTimeout);
    this.route('/admin/ping', (_req, res) => send(res, 200, 'pong'));
    this.route('/ready', (_req, res) => (this.ready && this.readyCheck() ? send(res, 200, 'ready\n') : send(res, 503, 'not ready\n')));
    this.route('/config.json', (_req, res) => sendJson(res, 200, ctx.config));
    this.route('/delegator.json', (req, res, url) => this.#delegator(req, res, url));
    this.route('/admin/shutdown', (req, res) => this.#shutdown(req, res), { changesState: true });
    this.route('/client_state.json', (_req, res) => sendJson(res, 200, Object.fromEntries(ctx.routers.map((r) => [r.label, r.router.clientState()]))));
    this.route('/', (_req, res) => send(res, 200, DASHBOARD_HTML, 'text/html; charset=utf-8'));
    // Linkerd 1's dtab playground page: the dashboard holds the playground.
    this.route('/delegator', (_req, res) => send(res, 200, DASHBOARD_HTML, 'text/html; charset=utf-8'));
    this.route('/admin/routers.json', (_req, res) =>
      sendJson(
        res,
        200,
        ctx.routers.map((r) => ({ label: r.label, dtab: r.router.dtab.show() })),
      ),
    );
    const metrics = ctx.metrics;
    if (metrics !== undefined) {
      const prometheus = async (_req: http.IncomingMessage, res: http.ServerResponse): Promise<void> =>
        send(res, 200, await metrics.prometheus(), metrics.contentType);
      this.route('/metrics', prometheus);
      this.route('/admin/metrics/prometheus', prometheus);
      this.route('/admin/metrics.json', (_req, res) => sendJson(res, 200, metrics.flat()));
      this.route('/admin/services.json', (_req, res) =>
        sendJson(res, 200, {
          at: Date.now(),
          services: serviceRows(metrics, ctx.routers),
          routers: [...metrics.routers.values()].map((r) => ({
            label: r.label,
            connections: r.listener.connectionsOpen,
            inFlight: r.requests.inFlightNow,
            peers: [...r.listener.peers].map(([identity, p]) => ({ identity, ...p })),
          })),
        }),
      );
    }
  }

  /** Adds a path (metrics, dashboard and namer state plug in here). */
  route(path: string, handler: Handler, options: RouteOptions = {}): void {
    this.#paths.set(path, { handler, changesState: options.changesState === true });
  }

  async start(): Promise<void> {
    const { ip, port } = this.#ctx.config.admin;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, ip, () => resolve());
    });
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    // Sockets Node does not list as HTTP connections yet (or any more) are ours to end too.
    this.#own.destroyAll();
    this.#others.destroyAll();
    await closed;
  }

  /**
   * The routers' listener classes on the admin port: caps counted from a socket's first moment
   * (before Node's HTTP parser takes it) and a deadline for every state. This host's own
   * connections are counted apart under the same caps: the port is open to every pod, and a flood
   * from them must not refuse the kubelet's probes on a hostNetwork node or an operator's
   * port-forward (their source address is the address they connected to).
   */
  #limitSockets(headersTimeout: number, idleTimeout: number): void {
    const metrics = this.#ctx.metrics;
    const deadline = (state: ConnectionState): void => void metrics?.listenerFamilies.connectionDeadlines.labels(ADMIN_LABEL, state).inc();
    const nodeOwn = this.#server.listeners('connection') as ((socket: Socket) => void)[];
    this.#server.removeAllListeners('connection');
    this.#server.on('connection', (socket: Socket) => {
      const fromHere = socket.remoteAddress !== undefined && socket.remoteAddress === socket.localAddress;
      const refused = (fromHere ? this.#own : this.#others).admit(socket);
      if (refused !== undefined) {
        metrics?.listenerFamilies.connectionsRefused.labels(ADMIN_LABEL, refused).inc();
        socket.destroy();
        return;
      }
      for (const listener of nodeOwn) listener.call(this.#server, socket);
    });
    this.#server.setTimeout(idleTimeout);
    this.#server.on('timeout', (socket: Socket) => {
      deadline('idle');
      socket.destroy();
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') deadline('headers');
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      rescueRaw(socket, parserError(err), {}, this.#logger, headersTimeout, () => deadline('error_answer'));
    });
  }

  #trustedSource(socket: Socket): boolean {
    const remote = socket.remoteAddress;
    if (remote === undefined) return false;
    // This host: localhost (kubectl port-forward arrives there) or a connection to its own address.
    if (remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1' || remote === socket.localAddress) return true;
    return this.#allowedSources.check(
      remote.startsWith('::ffff:') ? remote.slice(7) : remote,
      isIP(remote.startsWith('::ffff:') ? remote.slice(7) : remote) === 6 ? 'ipv6' : 'ipv4',
    );
  }

  #dispatch(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://admin');
    const entry = this.#paths.get(url.pathname);
    // Every request, known path or not: Host and Origin first, then what a state change needs.
    const changesState = entry?.changesState === true && req.method !== 'GET' && req.method !== 'HEAD';
    const refusal = checkAdminRequest(req.headers, this.#hostRules, changesState);
    if (refusal !== undefined) return this.#refuse(req, res, refusal.reason, refusal.message);
    // Topology and config (everything but probes and metrics) only for this host and the
    // operator: loopback (port-forward), the node itself, and admin.allowedSourceCidrs.
    if (!PUBLIC_PATHS.has(url.pathname) && !this.#trustedSource(req.socket)) {
      return this.#refuse(req, res, 'remote', `${url.pathname} is served to this host and admin.allowedSourceCidrs only; probes and metrics are open`);
    }
    if (entry === undefined) return send(res, 404, `no admin page at ${url.pathname}\n`);
    Promise.resolve(entry.handler(req, res, url)).catch((err: unknown) => {
      this.#logger.error({ err }, 'admin handler failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  }

  async #delegator(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    let router = url.searchParams.get('router') ?? url.searchParams.get('namespace');
    let pathText = url.searchParams.get('path');
    let dtabText = url.searchParams.get('dtab') ?? '';
    if (req.method === 'POST') {
      try {
        const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
        router = String(body['router'] ?? body['namespace'] ?? router ?? '');
        pathText = String(body['path'] ?? pathText ?? '');
        dtabText = String(body['dtab'] ?? dtabText);
      } catch (err) {
        return send(res, 400, `bad JSON body: ${(err as Error).message}\n`);
      }
    }
    const entry = this.#ctx.routers.find((r) => r.label === router) ?? (router ? undefined : this.#ctx.routers[0]);
    if (entry === undefined) return send(res, 400, `unknown router '${router ?? ''}'\n`);
    if (!pathText) return send(res, 400, 'path is required\n');
    try {
      const path = parsePath(pathText);
      const dtab = dtabText.trim() === '' ? entry.router.dtab : entry.router.dtab.concat(Dtab.read(dtabText));
      // The router's own budget: an explanation costs no more than binding the name would.
      const stats: EvalStats = { work: 0, size: 0 };
      const tree = await this.#ctx.interpreter.delegate(dtab, path, { timeoutMs: 2000, budget: entry.router.bindingBudget, stats });
      // Indented for people reading small trees; a large one is sent compact (indentation
      // grows with depth and would make most of the bytes).
      if (stats.size > LARGE_EXPLANATION) send(res, 200, JSON.stringify(delegateJson(tree)) + '\n', 'application/json');
      else sendJson(res, 200, delegateJson(tree));
    } catch (err) {
      if (err instanceof DtabParseError) return send(res, 400, `${err.message}\n`);
      throw err;
    }
  }

  /** A 403 with l5d-err through the rescue point; the body is discarded, the refusal counted. */
  #refuse(req: http.IncomingMessage, res: http.ServerResponse, reason: AdminRefusal, message: string): void {
    this.#ctx.metrics?.adminRefusals.labels(reason).inc();
    req.resume();
    rescue(res, new HostmeshError('ADMIN_REFUSED', message), {}, this.#logger);
  }

  #shutdown(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return rescue(res, HostmeshError.of('METHOD_NOT_ALLOWED', 'postOnly', { method: req.method ?? '?', path: '/admin/shutdown' }), {}, this.#logger);
    }
    if (!this.#ctx.config.admin.allowRemoteShutdown && !isLoopback(req.socket.remoteAddress)) {
      return this.#refuse(req, res, 'remote', 'shutdown is only allowed from loopback (admin.allowRemoteShutdown)');
    }
    send(res, 200, 'shutting down\n');
    setImmediate(() => void this.#ctx.shutdown());
  }
}
