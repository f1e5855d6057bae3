// The router's node certificate from `hostmesh identity` (docs/identity.md): a fresh key made in
// memory for each request (never written anywhere), a CSR for spiffe://<trust domain>/node/<node>,
// sent with the projected ServiceAccount token over HTTPS verified against the trust bundle.
// Renewed at 2/3 of its life (config), with jittered backoff on failure; until it actually
// expires the one in force keeps serving, so an issuer outage shorter than a third of the
// lifetime is never seen by traffic.

import { type Clock, systemClock } from '../core/clock.js';
import { generateKeyPair, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import { H1Pool, leanClientAvailable } from '../core/h1-pool.js';
import { Agent } from '../core/undici.js';
import { Backoff } from '../k8s/backoff.js';
import type { Logger } from '../log.js';
import type { TlsMaterial } from './tls-files.js';
import { buildUriCsr } from './csr.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface NodeCertificateOptions {
  /** The issuer's origin, e.g. https://hostmesh-identity.hostmesh.svc:8443. */
  readonly url: string;
  readonly tokenFile: string;
  /** PEM anchors that verify the issuer's serving certificate (re-read for each request). */
  readonly trustBundle: string;
  /** The name the issuer's certificate must carry (default: the url's host). */
  readonly serverName?: string;
  readonly trustDomain: string;
  readonly nodeName: string;
  readonly renewFraction?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly requestTimeoutMs?: number;
  readonly logger: Logger;
  /** Metrics go here (the router's registry). */
  readonly registry?: Registry;
  /** Renewals and retries run on it (tests drive it; default systemClock, which takes waits past 24.8 days in steps). */
  readonly clock?: Clock;
  readonly random?: () => number;
}

export interface IssuedCertificate extends TlsMaterial {
  readonly identity: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

const MAX_ANSWER = 64 * 1024;

export class NodeCertificate {
  readonly #o: NodeCertificateOptions;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #listeners = new Set<(cert: IssuedCertificate) => void>();
  #current: IssuedCertificate | undefined;
  #cancel: (() => void) | undefined;
  #inFlight: Promise<boolean> | undefined;
  #closed = false;
  #agent: { bundle: string; agent: Dispatcher } | undefined;
  /** When the next attempt is due (the clock's ms), for tests and the log. */
  nextAttemptAt: number | undefined;
  readonly #renewals: Counter | undefined;

  constructor(options: NodeCertificateOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#backoff = new Backoff({
      baseMs: options.retryMinMs ?? 1000,
      capMs: options.retryMaxMs ?? 60_000,
      ...(options.random ? { random: options.random } : {}),
    });
    if (options.registry !== undefined) {
      const registers = [options.registry];
      this.#renewals = new Counter({
        name: 'hostmesh_identity_renewals_total',
        help: 'Node certificate requests to the issuer, by result (ok, failed)',
        labelNames: ['result'],
        registers,
      });
      this.#renewals.labels('ok').inc(0);
      this.#renewals.labels('failed').inc(0);
      const self = this;
      new Gauge({
        name: 'hostmesh_identity_certificate_expiry_timestamp_seconds',
        help: "The node certificate's notAfter (Unix seconds; 0 without one)",
        registers,
        collect() {
          this.set(self.#current !== undefined ? self.#current.notAfter / 1000 : 0);
        },
      });
      new Gauge({
        name: 'hostmesh_identity_certificate_valid',
        help: 'Whether this router holds a node certificate valid now (1) or not (0)',
        registers,
        collect() {
          this.set(self.valid() ? 1 : 0);
        },
      });
    }
  }

  get identity(): string {
    return `spiffe://${this.#o.trustDomain}/node/${this.#o.nodeName}`;
  }

  get current(): IssuedCertificate | undefined {
    return this.#current;
  }

  /** A certificate within its validity now. */
  valid(): boolean {
    const c = this.#current;
    const now = this.#clock.now();
    return c !== undefined && now >= c.notBefore && now < c.notAfter;
  }

  /** Called with each new certificate (after the one in force was replaced). */
  onChange(fn: (cert: IssuedCertificate) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Asks for the first certificate now; renewals follow on their own. */
  start(): this {
    this.#arm(0);
    return this;
  }

  #arm(ms: number): void {
    this.#cancel?.();
    if (this.#closed) return;
    this.nextAttemptAt = this.#clock.now() + ms;
    this.#cancel = this.#clock.schedule(ms, () => void this.renewNow());
  }

  /** One attempt now (a renewal in progress is shared); true when a certificate was obtained. */
  renewNow(): Promise<boolean> {
    this.#inFlight ??= this.#attempt().finally(() => (this.#inFlight = undefined));
    return this.#inFlight;
  }

  async #attempt(): Promise<boolean> {
    const log = this.#o.logger;
    try {
      const cert = await this.#request();
      if (this.#closed) return false;
      this.#current = cert;
      this.#backoff.reset();
      this.#renewals?.labels('ok').inc();
      const life = cert.notAfter - cert.notBefore;
      const renewAt = cert.notBefore + life * (this.#o.renewFraction ?? 2 / 3);
      this.#arm(Math.max(0, renewAt - this.#clock.now()));
      log.info(
        { identity: cert.identity, notAfter: new Date(cert.notAfter).toISOString(), renewAt: new Date(renewAt).toISOString() },
        'node certificate issued',
      );
      for (const fn of this.#listeners) fn(cert);
      return true;
    } catch (err) {
      if (this.#closed) return false;
      this.#renewals?.labels('failed').inc();
      const delay = this.#backoff.next();
      this.#arm(delay);
      const c = this.#current;
      const left = c === undefined ? undefined : c.notAfter - this.#clock.now();
      const fields = { error: (err as Error).message, retryInMs: delay, ...(c !== undefined ? { notAfter: new Date(c.notAfter).toISOString() } : {}) };
      if (left === undefined) log.error(fields, 'no node certificate yet: the issuer did not give one; this router is not ready');
      else if (left <= 0) log.error(fields, 'node certificate EXPIRED and renewal failed: peers refuse this router until the issuer answers');
      else log.warn({ ...fields, expiresInMs: left }, 'node certificate renewal failed; the current one stays in force until it expires');
      return false;
    }
  }

  async #dispatcher(): Promise<Dispatcher> {
    const bundle = await readFile(this.#o.trustBundle, 'utf8');
    if (!bundle.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`trust bundle ${this.#o.trustBundle} holds no PEM certificate`);
    if (this.#agent?.bundle === bundle) return this.#agent.agent;
    const old = this.#agent?.agent;
    const url = new URL(this.#o.url);
    const timeout = this.#o.requestTimeoutMs ?? 10_000;
    const connect = { ca: bundle, servername: this.#o.serverName ?? url.hostname, timeout };
    // The router's own HTTP/1.1 pool (Node's llhttp binding): undici's Agent would compile its
    // llhttp WebAssembly for one request a day and keep it (docs/memory.md, session 7).
    const agent = leanClientAvailable()
      ? new H1Pool(url.origin, { connections: 1, connect, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 5_000, keepAliveMaxTimeout: 5_000 })
      : new Agent({ connect, headersTimeout: timeout, bodyTimeout: timeout, keepAliveTimeout: 5_000 });
    this.#agent = { bundle, agent };
    void old?.close().catch(() => undefined);
    return agent;
  }

  async #request(): Promise<IssuedCertificate> {
    const token = (await readFile(this.#o.tokenFile, 'utf8')).trim();
    if (token === '') throw new Error(`token file ${this.#o.tokenFile} is empty`);
    const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
    const csr = buildUriCsr(privateKey, this.identity);
    const dispatcher = await this.#dispatcher();
    const url = new URL('/v1/certificates', this.#o.url);
    const res = await dispatcher.request({
      origin: url.origin,
      path: url.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, accept: 'application/json' },
      body: JSON.stringify({ csr }),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body) {
      size += (c as Buffer).length;
      if (size > MAX_ANSWER) {
        res.body.destroy();
        throw new Error(`issuer answer over ${MAX_ANSWER} bytes`);
      }
      chunks.push(c as Buffer);
    }
    let body: { certificate?: unknown; chain?: unknown; error?: unknown; message?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new Error(`issuer answered ${res.statusCode} without JSON`);
    }
    if (res.statusCode !== 200) throw new Error(`issuer refused (${res.statusCode} ${String(body.error ?? '')}): ${String(body.message ?? '')}`);
    if (typeof body.certificate !== 'string') throw new Error('issuer answer has no certificate');
    const chain = Array.isArray(body.chain) ? body.chain.filter((c): c is string => typeof c === 'string') : [];
    const leaf = new X509Certificate(body.certificate);
    // Never trust the answer blindly: the key must be ours and the name our node's.
    if (!leaf.checkPrivateKey(privateKey)) throw new Error('issued certificate does not match the key this router made');
    const uris = (leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:'));
    if (uris.length !== 1 || uris[0] !== `URI:${this.identity}`)
      throw new Error(`issued certificate names ${uris.join(', ') || 'nothing'}, not ${this.identity}`);
    const pemOf = (p: string): string => (p.endsWith('\n') ? p : `${p}\n`);
    return {
      cert: pemOf(body.certificate) + chain.map(pemOf).join(''),
      key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      identity: this.identity,
      notBefore: Date.parse(leaf.validFrom),
      notAfter: Date.parse(leaf.validTo),
    };
  }

  close(): void {
    this.#closed = true;
    this.#cancel?.();
    void this.#agent?.agent.close().catch(() => undefined);
  }
}
