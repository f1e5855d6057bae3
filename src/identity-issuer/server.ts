// `hostmesh identity`: the issuer as a service. HTTPS (its serving certificate minted from the
// issuer key, so routers verify it against the same trust bundle as their peers) with one route,
// POST /v1/certificates; a plain admin port with /ready, /admin/ping and /metrics. The issuer's
// certificate and key are files (a Secret mount) reloaded without a restart.

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FileSetWatcher } from '../fs/file-watcher.js';
import { readInputFileSync } from '../fs/read-input.js';
import type { Logger } from '../log.js';
import { Issuer, REFUSALS, type IssuerPolicy } from './issuer.js';
import type { IdentityApi } from './kube-api.js';
import { loadIssuer, servingCertificate, type IssuerMaterial } from './signer.js';

export interface IssuerServerOptions {
  readonly api: IdentityApi;
  readonly policy: IssuerPolicy;
  readonly issuerCertFile: string;
  readonly issuerKeyFile: string;
  /** DNS names of the issuer's serving certificate (the Service's names routers dial). */
  readonly dnsNames: readonly string[];
  readonly ip?: string;
  readonly port?: number;
  readonly adminIp?: string;
  readonly adminPort?: number;
  readonly now?: () => number;
  readonly pollMs?: number;
  readonly logger: Logger;
  /** Most requests decided at once; more wait in Node's accept queue (default 64). */
  readonly maxConcurrent?: number;
}

/** The body of a certificate request: JSON `{ "csr": "<PEM>" }`, at most this many bytes. */
const MAX_BODY = 32 * 1024;

export class IssuerServer {
  readonly registry = new Registry();
  readonly issued: Counter;
  readonly refused: Counter;
  readonly duration: Histogram;
  readonly reloads: Counter;
  readonly #o: IssuerServerOptions;
  readonly #issuer: Issuer;
  #material: IssuerMaterial;
  #https: https.Server | undefined;
  #admin: http.Server | undefined;
  #watcher: FileSetWatcher | undefined;
  #inFlight = 0;

  constructor(options: IssuerServerOptions) {
    this.#o = options;
    this.#material = this.#load();
    collectDefaultMetrics({ register: this.registry });
    this.issued = new Counter({ name: 'hostmesh_identity_issued_total', help: 'Node certificates signed', registers: [this.registry] });
    this.refused = new Counter({
      name: 'hostmesh_identity_refused_total',
      help: 'Certificate requests refused, by reason (nothing signed)',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    for (const r of REFUSALS) this.refused.labels(r).inc(0);
    this.duration = new Histogram({
      name: 'hostmesh_identity_issue_duration_seconds',
      help: 'Time to decide a certificate request (TokenReview, pod read, signing)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.reloads = new Counter({
      name: 'hostmesh_identity_issuer_reloads_total',
      help: 'Issuer certificate reloads',
      labelNames: ['result'],
      registers: [this.registry],
    });
    const self = this;
    new Gauge({
      name: 'hostmesh_identity_issuer_expiry_timestamp_seconds',
      help: "The issuer certificate's notAfter (Unix seconds)",
      registers: [this.registry],
      collect() {
        this.set(self.#material.notAfter.getTime() / 1000);
      },
    });
    this.#issuer = new Issuer({ api: options.api, policy: options.policy, material: () => this.#material, ...(options.now ? { now: options.now } : {}) });
  }

  #load(): IssuerMaterial {
    const cert = readInputFileSync(this.#o.issuerCertFile, 'issuer certificate').toString('utf8');
    const key = readInputFileSync(this.#o.issuerKeyFile, 'issuer key').toString('utf8');
    return loadIssuer(cert, key);
  }

  #serving(): { cert: string; key: string } {
    const now = new Date((this.#o.now ?? Date.now)());
    const s = servingCertificate(this.#material, this.#o.dnsNames, `spiffe://${this.#o.policy.trustDomain}/identity`, now, 365 * 86_400_000);
    return { cert: s.certPem, key: s.keyPem };
  }

  get material(): IssuerMaterial {
    return this.#material;
  }

  async start(): Promise<this> {
    const logger = this.#o.logger;
    this.#https = https.createServer(
      { ...this.#serving(), minVersion: 'TLSv1.2', requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 },
      (req, res) => void this.#handle(req, res),
    );
    this.#https.maxHeadersCount = 50;
    await new Promise<void>((resolve, reject) => {
      this.#https?.once('error', reject);
      this.#https?.listen(this.#o.port ?? 8443, this.#o.ip ?? '0.0.0.0', () => resolve());
    });
    this.#admin = http.createServer((req, res) => void this.#handleAdmin(req, res));
    await new Promise<void>((resolve, reject) => {
      this.#admin?.once('error', reject);
      this.#admin?.listen(this.#o.adminPort ?? 9990, this.#o.adminIp ?? '0.0.0.0', () => resolve());
    });
    this.#watcher = new FileSetWatcher(
      [this.#o.issuerCertFile, this.#o.issuerKeyFile],
      () => {
        try {
          this.#material = this.#load();
          this.#https?.setSecureContext(this.#serving());
          this.reloads.labels('ok').inc();
          logger.info({ notAfter: this.#material.notAfter.toISOString() }, 'issuer certificate reloaded');
        } catch (err) {
          this.reloads.labels('rejected').inc();
          logger.error({ error: (err as Error).message }, 'issuer certificate reload rejected; the previous one stays in force');
        }
      },
      this.#o.pollMs ?? 5000,
    );
    logger.info({ address: this.address, admin: this.adminAddress, notAfter: this.#material.notAfter.toISOString() }, 'identity issuer listening');
    return this;
  }

  /** Re-reads the issuer files now (tests; the watcher does it on its own). */
  reload(): Promise<void> {
    return this.#watcher?.check() ?? Promise.resolve();
  }

  get address(): AddressInfo {
    return this.#https?.address() as AddressInfo;
  }

  get adminAddress(): AddressInfo {
    return this.#admin?.address() as AddressInfo;
  }

  async #handleAdmin(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/admin/ping') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('pong');
    if (path === '/ready') {
      const ok = this.#material.notAfter.getTime() > (this.#o.now ?? Date.now)();
      return void res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'issuer certificate expired\n');
    }
    if (path === '/metrics') {
      const body = await this.registry.metrics();
      return void res.writeHead(200, { 'content-type': this.registry.contentType }).end(body);
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    };
    if ((req.url ?? '').split('?')[0] !== '/v1/certificates') return send(404, { error: 'not_found', message: 'POST /v1/certificates' });
    if (req.method !== 'POST') return send(405, { error: 'method_not_allowed', message: 'POST only' });
    if (this.#inFlight >= (this.#o.maxConcurrent ?? 64)) {
      res.setHeader('retry-after', '1');
      return send(503, { error: 'busy', message: 'too many requests in progress' });
    }
    this.#inFlight++;
    const started = process.hrtime.bigint();
    try {
      const auth = req.headers.authorization ?? '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      let csr = '';
      let size = 0;
      const chunks: Buffer[] = [];
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > MAX_BODY) {
          this.refused.labels('bad_request').inc();
          return send(413, { error: 'bad_request', message: `body over ${MAX_BODY} bytes` });
        }
        chunks.push(c as Buffer);
      }
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { csr?: unknown };
        if (typeof body.csr === 'string') csr = body.csr;
      } catch {
        // refused below as bad_request
      }
      const result = await this.#issuer.issue(token, csr);
      if (result.ok) {
        this.issued.inc();
        this.#o.logger.info({ node: result.node, notAfter: result.notAfter.toISOString() }, 'node certificate issued');
        return send(200, { certificate: result.certificate, chain: result.chain, identity: result.identity, notAfter: result.notAfter.toISOString() });
      }
      this.refused.labels(result.reason).inc();
      this.#o.logger.warn({ reason: result.reason, pod: result.pod, source: req.socket.remoteAddress, error: result.message }, 'certificate request refused');
      if (result.status === 503) res.setHeader('retry-after', '5');
      return send(result.status, { error: result.reason, message: result.message });
    } finally {
      this.#inFlight--;
      this.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    const closeOne = (s: http.Server | undefined): Promise<void> =>
      new Promise((resolve) => {
        if (s === undefined) return resolve();
        s.close(() => resolve());
        s.closeAllConnections();
      });
    await Promise.all([closeOne(this.#https), closeOne(this.#admin)]);
  }
}
