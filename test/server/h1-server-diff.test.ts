// Differential properties for the listener's server engines (issue 28, Design 2's server half):
// the very same request bytes, cut at the very same points, go over a raw socket to a router whose
// listener runs Node's http.Server (`engine: 'node'`, the oracle) and to one whose listener runs
// the lean engine (`engine: 'lean'`: raw sockets and llhttp), both in front of the same recording
// backend. What a user would notice must be the same: the statuses the client got, in order (1xx
// included), which carry l5d-err, the bodies of the answers, whether the connection was closed or
// left waiting, and what reached the backend (method, target, end-to-end fields in order, body
// bytes, trailers). Node's side is also held to a model (well-formed requests arrive intact; the
// smuggling class is refused with nothing of it sent on), so the harness cannot pass by comparing
// two wrong answers. Seeds are fixed (SERVER_FUZZ_SEED=<n> runs another, SERVER_FUZZ_SCALE=10 a
// longer hunt); a failure names the seed, the case and its exact bytes (SERVER_FUZZ_SHRINK=1 shrinks it first).
//
// Intended differences between the engines (each normalized below, with its RFC reason): none so
// far. An entry here needs the RFC text that allows both behaviours.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import {
  type Answered,
  enginesUnderTest,
  type EngineRouters,
  exchange,
  readAnswers,
  type ServerEngine,
  settled,
  startEngineRouters,
} from '../helpers/server-engines.js';
import { asPeer, writeListenerPki } from '../helpers/listener-pki.js';

t.setTimeout(90_000);

const SEED = Number(process.env.SERVER_FUZZ_SEED ?? 20261207);
const SCALE = Number(process.env.SERVER_FUZZ_SCALE ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
const IP = '127.0.0.1';
/** maxHeaders of both servers: small, so "more fields than the limit" is a short request. */
const MAX_HEADERS = 24;
const ENGINES = enginesUnderTest();

// ---------------------------------------------------------------------------------------------
// The recording backend: Node's http.Server, as an application would parse what the router sent.

interface Seen {
  method: string;
  target: string;
  /** Field names lowercased, values as parsed, in order: every field the backend got. */
  fields: [string, string][];
  body: string;
  trailers: [string, string][];
  complete: boolean;
}

const seen: Seen[] = [];
/** Requests the backend is reading or answering. */
let pending = 0;
/** Counts every step the backend takes (settling watches it). */
let steps = 0;
const backendErrors: string[] = [];

/** What the router's client never sends as a request trailer (src/core/h1-pool.ts, NOT_TRAILERS). */
const NOT_TRAILER =
  /^(content-length|transfer-encoding|host|connection|keep-alive|te|trailer|upgrade|proxy-connection|content-encoding|content-type|content-range|authorization|proxy-authorization|set-cookie|cookie|expect)$/i;

const pairs = (raw: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  return out;
};

const backend = http.createServer((req, res) => {
  pending++;
  steps++;
  const entry: Seen = { method: req.method ?? '', target: req.url ?? '', fields: pairs(req.rawHeaders), body: '', trailers: [], complete: false };
  seen.push(entry);
  req.setEncoding('latin1');
  req.on('data', (c: string) => {
    entry.body += c;
    steps++;
  });
  req.on('end', () => {
    entry.complete = true;
    entry.trailers = pairs(req.rawTrailers);
    steps++;
    const status = /^\/s\/(204|304)\b/.exec(req.url ?? '')?.[1];
    if (status !== undefined) {
      res.writeHead(Number(status));
      res.end();
      return;
    }
    const text = `ok ${req.method} ${Buffer.byteLength(entry.body, 'latin1')}`;
    res.writeHead(200, { 'content-length': Buffer.byteLength(text), 'x-backend': 'recording' });
    res.end(req.method === 'HEAD' ? undefined : text);
  });
  res.on('close', () => {
    pending--;
    steps++;
  });
});
backend.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
  backendErrors.push(err.code ?? err.message);
  steps++;
  socket.destroy();
});
await new Promise<void>((r) => backend.listen(0, IP, r));
const backendPort = (backend.address() as net.AddressInfo).port;
t.teardown(() => new Promise<void>((r) => backend.close(() => r())));

const SERVER = { headersTimeoutMs: 30_000, idleTimeoutMs: 60_000, maxHeaders: MAX_HEADERS };
const routers: EngineRouters = await startEngineRouters(IP, backendPort, SERVER, ENGINES);
t.teardown(() => routers.close());

/** Where a case is sent: a router set, over plaintext or as a peer router over mTLS. */
interface Target {
  readonly routers: EngineRouters;
  readonly tls?: ConnectionOptions;
}
const PLAIN: Target = { routers };

// ---------------------------------------------------------------------------------------------
// One case on one engine: what the client and the backend saw.

/** Hop-by-hop and framing fields, and what the router adds: not end-to-end (RFC 9110 7.6.1). */
const NOT_END_TO_END =
  /^(connection|keep-alive|proxy-connection|te|trailer|transfer-encoding|upgrade|content-length|expect|via|l5d-.*|x-forwarded-.*|forwarded)$/;

interface Outcome {
  /** Every status the client read, 1xx included, in order. */
  statuses: number[];
  /** Which of those answers carry l5d-err. */
  errs: boolean[];
  /** The l5d-err text of each answer ('' for none): not compared, read by INTENDED only. */
  errTexts: string[];
  /** Bodies of the final answers without l5d-err (an error's text is the catalog's, checked elsewhere). */
  bodies: string[];
  /** Bytes the engine wrote that are no answer. */
  garbage: string;
  closed: boolean;
  hung: boolean;
  backend: { method: string; target: string; fields: [string, string][]; body: string; trailers: [string, string][]; complete: boolean }[];
  backendErrors: string[];
  /** What the router still held once the client had left: requests in flight, backend requests open, sockets. */
  leaked: { inFlight: number; backendOpen: number; sockets: number };
}

/** How long a case's leftovers get to go once its client left (a bound on a wait, not an assertion's clock). */
const LEFTOVER_MS = 2000;

async function quiet(engine: ServerEngine, on: EngineRouters): Promise<void> {
  // Sockets only: a request an engine leaked in flight is that case's outcome (`leaked`), not the next one's.
  if (!(await settled(() => on.connections(engine) === 0))) throw new Error(`the ${engine} engine still holds ${on.connections(engine)} sockets between cases`);
}

async function run(engine: ServerEngine, pieces: readonly Buffer[], methods: readonly string[], target: Target = PLAIN): Promise<Outcome> {
  const on = target.routers;
  await quiet(engine, on);
  const from = seen.length;
  const errorsFrom = backendErrors.length;
  // Counted from here: what an earlier case leaked stays out of this one.
  const inFlight0 = on.inFlight(engine);
  const pending0 = pending;
  const idle = (): boolean => on.inFlight(engine) === inFlight0 && pending === pending0;
  const x = await exchange(IP, on.port(engine), pieces, {
    idle,
    progress: () => `${steps}`,
    ...(target.tls !== undefined ? { tls: target.tls } : {}),
  });
  // The client left: whatever the router still had for it ends.
  await settled(() => idle() && on.connections(engine) === 0, LEFTOVER_MS);
  // (An earlier case's leftover may end meanwhile: counted as none, not as a negative leak.)
  const leaked = { inFlight: Math.max(0, on.inFlight(engine) - inFlight0), backendOpen: Math.max(0, pending - pending0), sockets: on.connections(engine) };
  const read = readAnswers(x.bytes, methods);
  const hasErr = (a: Answered): boolean => a.fields.some(([k]) => k === 'l5d-err');
  return {
    statuses: read.answers.map((a) => a.status),
    errs: read.answers.map(hasErr),
    errTexts: read.answers.map((a) => decodeURIComponent(a.fields.find(([k]) => k === 'l5d-err')?.[1] ?? '')),
    bodies: read.answers.filter((a) => a.status >= 200 && !hasErr(a)).map((a) => a.body.toString('latin1')),
    garbage: read.rest.toString('latin1'),
    closed: x.closed,
    hung: x.hung,
    backend: seen.slice(from).map((s) => ({
      method: s.method,
      target: s.target,
      fields: s.fields.filter(([k]) => !NOT_END_TO_END.test(k)),
      body: s.body,
      trailers: s.trailers,
      complete: s.complete,
    })),
    backendErrors: backendErrors.slice(errorsFrom),
    leaked,
  };
}

/**
 * Field lines as a recipient may combine them (RFC 9110 5.3): one entry per name, the list
 * members of every line with that name in order, trimmed, empty ones dropped (5.6.1); names
 * sorted, as the order of differing names is not significant (5.3).
 */
function combined(fields: readonly [string, string][]): [string, string[]][] {
  const byName = new Map<string, string[]>();
  for (const [k, v] of fields) {
    const members = v
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    byName.set(k, [...(byName.get(k) ?? []), ...members]);
  }
  return [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** An outcome with each backend request's fields combined: what the engines are compared on. */
function comparable(o: Outcome): unknown {
  const { errTexts: _texts, ...rest } = o;
  return { ...rest, backend: o.backend.map((b) => ({ ...b, fields: combined(b.fields), trailers: combined(b.trailers) })) };
}

/**
 * Intended differences: an engine may answer otherwise than Node's only where Node's engine is
 * the one at odds with the RFC, each named here with its reason. Both are about answers Node's
 * engine loses: its listener writes a parse error's 400 and closes the socket at once, over the
 * answers of earlier requests of the same connection still in flight, though their requests
 * reached the backend (reported in /work/notes/srvdiff7.md).
 */
interface Intended {
  readonly name: string;
  readonly rfc: string;
  readonly holds: (node: Outcome, other: Outcome, bytes: Buffer) => boolean;
}

interface Final {
  readonly status: number;
  readonly err: boolean;
}
const answersOf = (o: Outcome): Final[] => o.statuses.map((status, i) => ({ status, err: o.errs[i] === true }));
const isPrefix = (a: readonly Final[], b: readonly Final[]): boolean => a.length <= b.length && a.every((x, i) => isDeepStrictEqual(x, b[i]));
const completeAtBackend = (o: Outcome): number => o.backend.filter((b) => b.complete).length;
const finals = (answers: readonly Final[]): number => answers.filter((a) => a.status >= 200).length;
/**
 * What `other` did beyond Node's engine is only more of the same connection served: the same
 * close, waiting and stray bytes (less the backend connections Node's engine reset); Node's backend requests a prefix of other's (Node drops the
 * pipelined requests still queued when it writes its 400); every answer other gave beyond Node's
 * prefix (but a final error both share) is no error, and answers a request that reached the
 * backend whole and that Node's prefix did not answer (the router's own error answers aside).
 */
function servedMore(node: Outcome, other: Outcome, nAnswers: readonly Final[], oAnswers: readonly Final[]): boolean {
  // Node's engine resets the backend connection of the requests whose answers it drops.
  const rest = (o: Outcome): unknown =>
    comparable({
      ...o,
      statuses: [],
      errs: [],
      bodies: [],
      backend: [],
      backendErrors: o === node ? o.backendErrors.filter((e) => e !== 'ECONNRESET') : o.backendErrors,
    });
  if (!isDeepStrictEqual(rest(node), rest(other))) return false;
  const nb = (comparable(node) as { backend: unknown[] }).backend;
  const ob = (comparable(other) as { backend: unknown[] }).backend;
  if (!nb.every((b, i) => isDeepStrictEqual(b, ob[i]))) return false;
  return (
    isPrefix(nAnswers, oAnswers) &&
    oAnswers.slice(nAnswers.length).every((a) => !a.err) &&
    finals(oAnswers.slice(nAnswers.length)) <= completeAtBackend(other) - finals(nAnswers.filter((a) => !a.err))
  );
}

const INTENDED: readonly Intended[] = [
  {
    name: 'the answers of earlier requests are sent before a parse error refuses a later one',
    rfc: 'RFC 9112 9.3.2: a server MUST send the responses to pipelined requests in the order the requests were received; the earlier requests reached the backend, so their answers are owed',
    holds: (node, other) => {
      const n = answersOf(node);
      const o = answersOf(other);
      const nLast = n.at(-1);
      if (!node.closed || nLast === undefined || !nLast.err || !isDeepStrictEqual(o.at(-1), nLast)) return false;
      return servedMore(node, other, n.slice(0, -1), o.slice(0, -1));
    },
  },
  {
    name: 'bytes after a request that closes the connection are ignored, not answered with 400 over its answer',
    rfc: 'RFC 9112 9.6 and 9.3: after a request with close (or HTTP/1.0 without keep-alive) a server closes after its final response and MUST NOT process further requests; nothing requires an error for the bytes after it',
    holds: (node, other) => {
      const n = answersOf(node);
      const o = answersOf(other);
      const nLast = n.at(-1);
      // Node's last answer is its parser's complaint about bytes after a message that closes the
      // connection (close, HTTP/1.0 or 0.9 without keep-alive), and nothing else.
      const afterClose = /HPE_CLOSED_CONNECTION/.test(node.errTexts.at(-1) ?? '');
      if (!afterClose || !node.closed || nLast === undefined || !nLast.err) return false;
      return servedMore(node, other, n.slice(0, -1), o);
    },
  },
];

/** How often each intended difference was met in this run. */
const intendedMet = new Map<string, number>();

interface Compared {
  readonly outcomes: Map<ServerEngine, Outcome>;
  readonly node: Outcome;
}

/** The same bytes and cuts on every engine under test; a difference throws with the exact bytes. */
/** Cases whose engines differed once and agreed when run again (a busy machine's timing), with their bytes. */
const rerun: string[] = [];

async function differential(bytes: Buffer, cuts: readonly number[], methods: readonly string[], target: Target = PLAIN, again = true): Promise<Compared> {
  const pieces = cutAt(bytes, cuts);
  const outcomes = new Map<ServerEngine, Outcome>();
  for (const engine of ENGINES) outcomes.set(engine, await run(engine, pieces, methods, target));
  const node = outcomes.get('node') as Outcome;
  const agree = [...outcomes].every(([, o]) => isDeepStrictEqual(comparable(o), comparable(node)) || INTENDED.some((d) => d.holds(node, o, bytes)));
  if (!agree && again) {
    // Once more, the same bytes and cuts: a difference that does not come back was the machine's.
    const log = process.env.SERVER_DIFF_LOG;
    if (log !== undefined) appendFileSync(log, `${JSON.stringify({ rerun: true, bytes: bytes.toString('latin1'), cuts, ...Object.fromEntries(outcomes) })}\n`);
    const second = await differential(bytes, cuts, methods, target, false);
    rerun.push(JSON.stringify(bytes.toString('latin1').slice(0, 120)));
    return second;
  }
  for (const [engine, o] of outcomes) {
    if (engine === 'node') continue;
    if (!isDeepStrictEqual(comparable(o), comparable(node))) {
      // SERVER_DIFF_LOG=<file>: every difference as a JSON line (bytes, cuts, both outcomes) for a report.
      const log = process.env.SERVER_DIFF_LOG;
      if (log !== undefined) appendFileSync(log, `${JSON.stringify({ bytes: bytes.toString('latin1'), cuts, node, [engine]: o })}\n`);
      const intended = INTENDED.find((d) => d.holds(node, o, bytes));
      if (intended !== undefined) {
        intendedMet.set(intended.name, (intendedMet.get(intended.name) ?? 0) + 1);
        continue;
      }
      throw new Error(
        `the ${engine} engine differs from node's\nbytes: ${JSON.stringify(bytes.toString('latin1'))}\ncuts: ${JSON.stringify(cuts)}\n` +
          `node: ${JSON.stringify(node)}\n${engine}: ${JSON.stringify(o)}`,
      );
    }
  }
  return { outcomes, node };
}

function cutAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    pieces.push(bytes.subarray(from, c));
    from = c;
  }
  return pieces;
}

const everyByte = (bytes: Buffer): number[] => Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);

// ---------------------------------------------------------------------------------------------
// Well-formed requests: a model, rendered to bytes.

const tokenChars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...tokenChars), minLength: min, maxLength: max });
/**
 * Names the router owns or that frame the message; the model sends only end-to-end fields. Also
 * `__proto__`: Node's IncomingMessage keeps fields in a plain object, where that name sets nothing,
 * so no engine forwards it (README, "Choices we made"; SERVER_FUZZ_SEED=5 drew one).
 */
const RESERVED =
  /^(host|connection|keep-alive|proxy-.*|te|trailer|transfer-encoding|upgrade|content-length|expect|via|l5d.*|dtab.*|x-forwarded-.*|forwarded|max-forwards|http2-settings|__proto__)$/i;
const fieldName = token(1, 12).filter((n) => !RESERVED.test(n));
const vchar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x21, max: 0x7e }) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
  { weight: 1, arbitrary: fc.constantFrom(0x20, 0x09) },
);
/** A field value without leading or trailing whitespace (the parsers strip OWS; render adds some). */
const fieldValue = fc.array(vchar, { maxLength: 20 }).map((cs) => String.fromCharCode(...cs).replace(/^[ \t]+|[ \t]+$/g, ''));
const field = fc.tuple(fieldName, fieldValue);
const segment = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-._~%2F'.split('')), maxLength: 8 });
const path = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      // A query has no '#' (RFC 3986 3.4): one starts a fragment, which no request-target has.
      .tuple(
        fc.array(segment, { maxLength: 3 }),
        fc.option(
          token(1, 6).filter((q) => !q.includes('#')),
          { nil: undefined },
        ),
      )
      .map(([segs, q]) => `/${segs.join('/')}${q === undefined ? '' : `?q=${q}`}`),
  },
  { weight: 1, arbitrary: fc.constantFrom('/s/204', '/s/304') },
);

interface Chunked {
  readonly sizes: number[];
  readonly exts: string[];
  readonly upper: boolean;
  readonly trailers: [string, string][];
}
interface Req {
  readonly method: string;
  readonly version: '1.1' | '1.0';
  readonly absolute: boolean;
  readonly host: string;
  readonly path: string;
  readonly fields: [string, string][];
  /** Where among the fields Host goes. */
  readonly hostAt: number;
  readonly body: string;
  readonly framing: 'none' | 'length' | 'chunked';
  readonly chunked: Chunked;
  readonly expect: boolean;
  readonly connection: 'keep-alive' | 'close' | 'none';
  /** OWS around values: '' or ' ' or '\t' or '  '. */
  readonly ows: string;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const chunkExt = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: token(1, 5).map((n) => `;${n}`) },
  { weight: 1, arbitrary: fc.tuple(token(1, 5), token(1, 5)).map(([n, v]) => `;${n}=${v}`) },
  { weight: 1, arbitrary: fc.tuple(token(1, 5), fc.stringMatching(/^[a-z0-9 ,;=]{0,6}$/)).map(([n, v]) => `;${n}="${v}"`) },
);

const reqArb = (methods: readonly string[]): fc.Arbitrary<Req> =>
  fc
    .record({
      method: fc.constantFrom(...methods),
      version: fc.constantFrom<'1.1' | '1.0'>('1.1', '1.1', '1.1', '1.0'),
      absolute: fc.boolean(),
      host: fc.constantFrom('world', 'svc.ns', 'a-b', 'world:8080'),
      path,
      fields: fc.oneof(
        { weight: 5, arbitrary: fc.array(field, { maxLength: 5 }) },
        { weight: 1, arbitrary: fc.array(field, { minLength: 10, maxLength: 16 }) },
      ),
      hostAt: fc.nat(),
      body: fc.oneof(
        { weight: 3, arbitrary: fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a).toString('latin1')) },
        { weight: 1, arbitrary: fc.constant('GET /smuggled HTTP/1.1\r\nHost: world\r\n\r\n') },
      ),
      framing: fc.constantFrom<'none' | 'length' | 'chunked'>('length', 'chunked', 'none'),
      chunked: fc.record({
        sizes: fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 6 }),
        exts: fc.array(chunkExt, { minLength: 8, maxLength: 8 }),
        upper: fc.boolean(),
        trailers: fc.oneof(
          { weight: 3, arbitrary: fc.constant<[string, string][]>([]) },
          { weight: 1, arbitrary: fc.array(field, { minLength: 1, maxLength: 2 }) },
        ),
      }),
      expect: fc.boolean(),
      connection: fc.constantFrom<'keep-alive' | 'close' | 'none'>('none', 'none', 'keep-alive', 'close'),
      ows: fc.constantFrom(' ', ' ', '', '\t', '  '),
    })
    .map((r) => {
      // Bodies only where methods carry them; HTTP/1.0 has no chunked coding (RFC 9112 6.1).
      const framing = !BODY_METHODS.has(r.method) ? 'none' : r.version === '1.0' && r.framing === 'chunked' ? 'length' : r.framing;
      // An HTTP/1.0 answer without a length is close-delimited: Node closes after a 204 or 304 to
      // HTTP/1.0 even with keep-alive, so those go to HTTP/1.1 only (the hostile property mixes them).
      const p = r.version === '1.0' && r.path.startsWith('/s/') ? '/' : r.path;
      return { ...r, path: p, framing, body: framing === 'none' ? '' : r.body, expect: r.expect && framing !== 'none' };
    });

interface Rendered {
  readonly requestLine: string;
  readonly lines: string[];
  readonly body: string;
}

function chunkedBody(body: string, c: Chunked): string {
  let out = '';
  let at = 0;
  let i = 0;
  const size = (n: number): string => (c.upper ? n.toString(16).toUpperCase() : n.toString(16));
  for (const s of c.sizes) {
    if (at >= body.length) break;
    const piece = body.slice(at, at + s);
    out += `${size(piece.length)}${c.exts[i++ % c.exts.length]}\r\n${piece}\r\n`;
    at += piece.length;
  }
  if (at < body.length) out += `${size(body.length - at)}${c.exts[i++ % c.exts.length]}\r\n${body.slice(at)}\r\n`;
  out += `0${c.exts[7]}\r\n`;
  for (const [k, v] of c.trailers) out += `${k}: ${v}\r\n`;
  return `${out}\r\n`;
}

function render(r: Req): Rendered {
  const target = r.absolute ? `http://${r.host}${r.path}` : r.path;
  const lines = r.fields.map(([k, v]) => `${k}:${v === '' ? '' : r.ows}${v}`);
  lines.splice(r.hostAt % (lines.length + 1), 0, `Host: ${r.host}`);
  if (r.framing === 'length') lines.push(`Content-Length: ${Buffer.byteLength(r.body, 'latin1')}`);
  if (r.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  if (r.expect) lines.push('Expect: 100-continue');
  if (r.connection !== 'none') lines.push(`Connection: ${r.connection}`);
  const body = r.framing === 'chunked' ? chunkedBody(r.body, r.chunked) : r.body;
  return { requestLine: `${r.method} ${target} HTTP/${r.version}`, lines, body };
}

const bytesOf = (x: Rendered): string => `${x.requestLine}\r\n${x.lines.map((l) => `${l}\r\n`).join('')}\r\n${x.body}`;

/** Whether the server keeps the connection after this request (RFC 9112 9.3). */
const keepsOpen = (r: Req): boolean => (r.version === '1.1' ? r.connection !== 'close' : r.connection === 'keep-alive');

/** The requests a server answers: up to and including the first that closes the connection. */
function delivered(reqs: readonly Req[]): Req[] {
  const out: Req[] = [];
  for (const r of reqs) {
    out.push(r);
    if (!keepsOpen(r)) break;
  }
  return out;
}

function expectedStatus(r: Req): number {
  const m = /^\/s\/(204|304)\b/.exec(r.path);
  return m === null ? 200 : Number(m[1]);
}

/** A whole case's bytes, and where it is cut into writes. */
interface Delivery {
  readonly cuts: number[];
  readonly everyByte: boolean;
}
const deliveryArb: fc.Arbitrary<Delivery> = fc.record({
  cuts: fc.array(fc.nat({ max: 100_000 }), { maxLength: 3 }),
  everyByte: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
const cutsOf = (bytes: Buffer, d: Delivery): number[] => (d.everyByte ? everyByte(bytes) : d.cuts.map((c) => c % bytes.length));

const failed = (err: unknown): never => {
  const e = err instanceof Error ? err : new Error(String(err));
  e.message = `${e.message}\n(seed ${SEED}; rerun with SERVER_FUZZ_SEED=${SEED})`;
  throw e;
};

t.test('property: well-formed pipelined requests reach the backend intact, and every engine answers them as Node does', async (t) => {
  let cases = 0;
  const started = performance.now();
  await fc
    .assert(
      fc.asyncProperty(
        fc.array(reqArb(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']), { minLength: 1, maxLength: 4 }),
        deliveryArb,
        async (reqs, d) => {
          cases++;
          // A client that sent `close` sends nothing more (RFC 9112 9.6); the hostile property does.
          const sent = delivered(reqs);
          const bytes = Buffer.from(sent.map((r) => bytesOf(render(r))).join(''), 'latin1');
          const { node } = await differential(
            bytes,
            cutsOf(bytes, d),
            sent.map((r) => r.method),
          );
          // The oracle against the model: what Node's engine does with well-formed requests.
          const statuses = sent.flatMap((r) => (r.expect && r.version === '1.1' ? [100, expectedStatus(r)] : [expectedStatus(r)]));
          const model = {
            statuses,
            errs: statuses.map(() => false),
            garbage: '',
            closed: !keepsOpen(sent.at(-1) as Req),
            hung: false,
            backend: sent.map((r) => ({
              method: r.method,
              target: r.path,
              fields: combined(r.fields.map(([k, v]) => [k.toLowerCase(), v])),
              body: r.body,
              // A chunked request's trailers are relayed (the lean client), less the fields that
              // may not be trailers (RFC 9110 6.5.1; src/core/h1-pool.ts, NOT_TRAILERS).
              trailers: r.framing === 'chunked' ? combined(r.chunked.trailers.filter(([k]) => !NOT_TRAILER.test(k)).map(([k, v]) => [k.toLowerCase(), v])) : [],
              complete: true,
            })),
            backendErrors: [],
            leaked: { inFlight: 0, backendOpen: 0, sockets: 0 },
          };
          const got = {
            ...node,
            backend: node.backend.map((b) => ({ ...b, fields: combined(b.fields.filter(([k]) => k !== 'host')), trailers: combined(b.trailers) })),
          };
          const { bodies: _bodies, errTexts: _errTexts, ...gotRest } = got;
          if (!isDeepStrictEqual(gotRest, model)) {
            throw new Error(
              `Node's engine did not serve well-formed requests as modelled\nbytes: ${JSON.stringify(bytes.toString('latin1'))}\nmodel: ${JSON.stringify(model)}\nnode: ${JSON.stringify(gotRest)}`,
            );
          }
          const hosts = node.backend.map((b) => b.fields.find(([k]) => k === 'host')?.[1]);
          if (
            !isDeepStrictEqual(
              hosts,
              sent.map((r) => r.host),
            )
          )
            throw new Error(`Host reached the backend as ${JSON.stringify(hosts)}`);
        },
      ),
      { seed: SEED, numRuns: runs(40), endOnFailure: process.env.SERVER_FUZZ_SHRINK === undefined },
    )
    .catch(failed);
  t.ok(cases >= runs(40), `${cases} cases on ${ENGINES.join(' and ')} (${Math.round(performance.now() - started)} ms)`);
});

// ---------------------------------------------------------------------------------------------
// Hostile requests: one request of a pipelined sequence mutated. `refused` mutations are the
// smuggling and malformed-framing class: Node's engine answers them with an error carrying
// l5d-err, closes the connection and sends nothing of them on (the property checks the oracle
// does); the others (`either`) are only compared between the engines.

/**
 * refused: the request's framing cannot be trusted: an error answer with l5d-err ends the
 * connection and no complete request of it reaches the backend. rejected: an error answer with
 * l5d-err, nothing of it at the backend, the connection may serve on (a limit the router checks).
 * either: only compared between the engines.
 */
type Expectation = 'refused' | 'rejected' | 'either';
interface Mutation {
  readonly name: string;
  readonly expect: Expectation;
  readonly apply: (x: Rendered, r: Req) => string;
}

const CRLF = '\r\n';
const head = (line: string, lines: readonly string[]): string => `${line}${CRLF}${lines.map((l) => `${l}${CRLF}`).join('')}${CRLF}`;
/** The request's lines without its framing fields. */
const unframed = (x: Rendered): string[] => x.lines.filter((l) => !/^(content-length|transfer-encoding):/i.test(l));
const chunkedOf = (r: Req): string => chunkedBody(r.body === '' ? 'hello' : r.body, { ...r.chunked, trailers: [] });
const lengthOf = (r: Req): number => Buffer.byteLength(r.body === '' ? 'hello' : r.body, 'latin1');
const bodyOf = (r: Req): string => (r.body === '' ? 'hello' : r.body);
/** Replaces the CRLF ending line `i` of the head (0: the request line) with `by`. */
function lineEnd(x: Rendered, i: number, by: string): string {
  const all = [x.requestLine, ...x.lines];
  const at = i % all.length;
  return `${all.map((l, j) => `${l}${j === at ? by : CRLF}`).join('')}${CRLF}${x.body}`;
}
/** Inserts `c` into the name (or value) of field line `i`. */
function intoField(x: Rendered, i: number, c: string, part: 'name' | 'value'): string {
  const lines = [...x.lines];
  const at = i % lines.length;
  const line = lines[at] as string;
  const colon = line.indexOf(':');
  lines[at] = part === 'name' ? `${line.slice(0, 1)}${c}${line.slice(1)}` : `${line.slice(0, colon + 1)} a${c}b${line.slice(colon + 1)}`;
  return `${head(x.requestLine, lines)}${x.body}`;
}

function mutations(): fc.Arbitrary<Mutation> {
  const m = (name: string, expect: Expectation, apply: Mutation['apply']): Mutation => ({ name, expect, apply });
  return fc.oneof(
    // Content-Length with Transfer-Encoding, either order (RFC 9112 6.1: a request with both is
    // a smuggling attempt; a server MAY reject it and MUST close after it).
    fc.boolean().map((teFirst) =>
      m(`CL+TE${teFirst ? ' (TE first)' : ''}`, 'refused', (x, r) => {
        const both = teFirst
          ? ['Transfer-Encoding: chunked', `Content-Length: ${lengthOf(r)}`]
          : [`Content-Length: ${lengthOf(r)}`, 'Transfer-Encoding: chunked'];
        return `${head(x.requestLine, [...unframed(x), ...both])}${chunkedOf(r)}`;
      }),
    ),
    // Two Content-Lengths (RFC 9112 6.3 item 5: differing values are unrecoverable; llhttp refuses equal ones too).
    fc
      .constantFrom(0, 1)
      .map((d) =>
        m(
          `two Content-Lengths (+${d})`,
          'refused',
          (x, r) => `${head(x.requestLine, [...unframed(x), `Content-Length: ${lengthOf(r)}`, `Content-Length: ${lengthOf(r) + d}`])}${bodyOf(r)}`,
        ),
      ),
    // Content-Length is 1*DIGIT (RFC 9110 8.6): signs, hex, lists and inner spaces are invalid.
    fc
      .constantFrom<[string, (n: number) => string]>(
        ['+', (n) => `+${n}`],
        ['-', (n) => `-${n}`],
        ['hex', (n) => `0x${n.toString(16)}`],
        ['list', (n) => `${n}, ${n}`],
        ['inner space', (n) => `${n} 0`],
        ['empty', () => ''],
      )
      .map(([what, value]) =>
        m(`Content-Length ${what}`, 'refused', (x, r) => `${head(x.requestLine, [...unframed(x), `Content-Length: ${value(lengthOf(r))}`])}${bodyOf(r)}`),
      ),
    // Transfer codings the framing cannot trust (RFC 9112 6.3 item 4: chunked not final is a 400).
    fc
      .constantFrom('xchunked', 'chunked, identity', 'identity', 'chunked, chunked', 'chunked, gzip', 'chunked;q=1', 'chunkedx')
      .map((te) => m(`Transfer-Encoding: ${te}`, 'refused', (x, r) => `${head(x.requestLine, [...unframed(x), `Transfer-Encoding: ${te}`])}${chunkedOf(r)}`)),
    fc
      .constantFrom('CHUNKED', 'gzip, chunked', ' chunked ')
      .map((te) =>
        m(
          `Transfer-Encoding: ${JSON.stringify(te)}`,
          'either',
          (x, r) => `${head(x.requestLine, [...unframed(x), `Transfer-Encoding: ${te}`])}${chunkedOf(r)}`,
        ),
      ),
    // obs-fold (RFC 9112 5.2: a server MUST reject it with 400 or replace it with spaces).
    fc.nat().map((i) =>
      m('obs-fold', 'either', (x) => {
        const lines = [...x.lines];
        lines.splice((i % lines.length) + 1, 0, ' folded', '\tfolded-too');
        return `${head(x.requestLine, lines)}${x.body}`;
      }),
    ),
    // Bare CR anywhere is invalid (RFC 9112 2.2: MUST be treated as invalid or replaced by SP).
    fc.nat().map((i) => m('bare CR line end', 'refused', (x) => lineEnd(x, i, '\r'))),
    // Bare LF (RFC 9112 2.2: a recipient MAY accept LF alone as a line terminator).
    fc.nat().map((i) => m('bare LF line end', 'either', (x) => lineEnd(x, i, '\n'))),
    fc
      .tuple(fc.nat(), fc.constantFrom('\x00', '\x01', '\x0b', '\x7f', ' ', '"', '(', '\r', '\n', '\xe9'))
      .map(([i, c]) => m(`${JSON.stringify(c)} in a field name`, 'refused', (x) => intoField(x, i, c, 'name'))),
    fc
      .tuple(fc.nat(), fc.constantFrom('\x00', '\x01', '\x0b', '\x0c', '\x1f', '\r'))
      .map(([i, c]) => m(`${JSON.stringify(c)} in a field value`, 'refused', (x) => intoField(x, i, c, 'value'))),
    fc
      .tuple(fc.nat(), fc.constantFrom('\x7f', '\xff'))
      .map(([i, c]) => m(`${JSON.stringify(c)} in a field value`, 'either', (x) => intoField(x, i, c, 'value'))),
    // Chunk sizes are 1*HEXDIG (RFC 9112 7.1); sizes past 2^64 overflow.
    fc
      .constantFrom('zz', '-1', '0x5', ' 5', '+5', 'fffffffffffffffff1', '5\x00', '')
      .map((size) =>
        m(
          `chunk size ${JSON.stringify(size)}`,
          'refused',
          (x, r) => `${head(x.requestLine, [...unframed(x), 'Transfer-Encoding: chunked'])}${size}\r\nhello\r\n0\r\n\r\n`,
        ),
      ),
    fc
      .constantFrom('5 ', '5\t', '5;a=b c', '5;\x01', '5;a="x', '5;=b')
      .map((size) =>
        m(
          `chunk line ${JSON.stringify(size)}`,
          'either',
          (x) => `${head(x.requestLine, [...unframed(x), 'Transfer-Encoding: chunked'])}${size}\r\nhello\r\n0\r\n\r\n`,
        ),
      ),
    // Chunk data longer than its size, or without its CRLF.
    fc
      .constantFrom('3\r\nhello\r\n0\r\n\r\n', '5\r\nhelloXX0\r\n\r\n', '5\nhello\n0\n\n', '5\r\nhello\r\n0\r\nbad trailer\r\n\r\n')
      .map((body) =>
        m(`chunk data ${JSON.stringify(body)}`, 'refused', (x) => `${head(x.requestLine, [...unframed(x), 'Transfer-Encoding: chunked'])}${body}`),
      ),
    // A head over the servers' 16 KiB.
    fc
      .integer({ min: 16 * 1024 + 1, max: 20 * 1024 })
      .map((n) => m(`a ${n}-byte field`, 'refused', (x) => `${head(x.requestLine, [...x.lines, `X-Big: ${'a'.repeat(n)}`])}${x.body}`)),
    // More fields than maxHeaders (the router's 431).
    fc.integer({ min: 1, max: 6 }).map((n) =>
      m(`${MAX_HEADERS + n} fields`, 'rejected', (x) => {
        const extra = Array.from({ length: MAX_HEADERS + n - x.lines.length }, (_, i) => `X-Pad-${i}: 1`);
        return `${head(x.requestLine, [...x.lines, ...extra])}${x.body}`;
      }),
    ),
    fc
      .constantFrom('HTTP/1.2', 'HTTP/3.0', 'HTTP/1.10', 'http/1.1', 'HTTP/1', 'HTTP/11')
      .map((v) => m(`version ${JSON.stringify(v)}`, 'refused', (x) => `${head(x.requestLine.replace(/HTTP\/1\.[01]$/, v), x.lines)}${x.body}`)),
    // Node's llhttp takes HTTP/2.0 and HTTP/0.9 request lines as HTTP/1 messages (reported).
    fc
      .constantFrom('HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 ')
      .map((v) => m(`version ${JSON.stringify(v)}`, 'either', (x) => `${head(x.requestLine.replace(/HTTP\/1\.[01]$/, v), x.lines)}${x.body}`)),
    fc.constant(
      m(
        'no Host',
        'either',
        (x) =>
          `${head(
            x.requestLine,
            x.lines.filter((l) => !/^host:/i.test(l)),
          )}${x.body}`,
      ),
    ),
    fc
      .constantFrom('same', 'other')
      .map((which) =>
        m(`two Hosts (${which})`, 'either', (x, r) => `${head(x.requestLine, [...x.lines, `Host: ${which === 'same' ? r.host : 'elsewhere'}`])}${x.body}`),
      ),
    // Whitespace between a field name and the colon (RFC 9112 5.1: MUST be rejected with 400).
    fc.tuple(fc.nat(), fc.constantFrom(' ', '\t')).map(([i, ws]) =>
      m(`${JSON.stringify(ws)} before a colon`, 'refused', (x) => {
        const lines = [...x.lines];
        const at = i % lines.length;
        lines[at] = (lines[at] as string).replace(':', `${ws}:`);
        return `${head(x.requestLine, lines)}${x.body}`;
      }),
    ),
    fc.constant(m('an empty field name', 'refused', (x) => `${head(x.requestLine, [...x.lines, ': nameless'])}${x.body}`)),
    fc.constant(m('a field line without a colon', 'refused', (x) => `${head(x.requestLine, [...x.lines, 'no-colon-here'])}${x.body}`)),
    // Whitespace before the first field line (RFC 9112 2.2: MUST reject, or consume each such line).
    fc.constant(m('whitespace before the first field', 'either', (x) => `${head(x.requestLine, [' X-Hidden: 1', ...x.lines])}${x.body}`)),
    // Empty lines before the request line (RFC 9112 2.2: SHOULD be ignored).
    fc.constantFrom('\r\n', '\r\n\r\n', '\n').map((lead) => m(`${JSON.stringify(lead)} before the request line`, 'either', (x) => `${lead}${bytesOf(x)}`)),
    fc
      .constantFrom('/a b', '/a\tb', '/\x00', '/a#frag', '*', '', '/\xe9', 'http://other.example/', 'world', '//x', 'http://world', 'https://world/')
      .map((target) =>
        m(`target ${JSON.stringify(target)}`, 'either', (x) => `${head(x.requestLine.replace(/^(\S+) \S+ /, `$1 ${target} `), x.lines)}${x.body}`),
      ),
    fc
      .constantFrom('get', 'G(T', 'GE T', 'PRI', '', 'CONNECTX')
      .map((method) => m(`method ${JSON.stringify(method)}`, 'either', (x) => `${head(x.requestLine.replace(/^\S+/, method), x.lines)}${x.body}`)),
    fc
      .constantFrom('GET  / HTTP/1.1', 'GET /  HTTP/1.1', ' GET / HTTP/1.1', 'GET / HTTP/1.1\t', 'GET\t/ HTTP/1.1')
      .map((line) => m(`request line ${JSON.stringify(line)}`, 'either', (x) => `${head(line, x.lines)}${x.body}`)),
    // A body shorter than its Content-Length (the connection waits for the rest).
    fc
      .integer({ min: 1, max: 5 })
      .map((d) =>
        m(
          `body ${d} short of its Content-Length`,
          'either',
          (x, r) => `${head(x.requestLine, [...unframed(x), `Content-Length: ${lengthOf(r) + d}`])}${bodyOf(r)}`,
        ),
      ),
    fc
      .constantFrom(
        'Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
        'Expect: 100-continue',
        'Expect: something-else',
        'Connection: close, keep-alive',
        'Content-Length: 0',
      )
      .map((extra) => m(`with ${JSON.stringify(extra)}`, 'either', (x) => `${head(x.requestLine, [...x.lines, ...extra.split(CRLF)])}${x.body}`)),
  );
}

t.test('property: hostile requests are refused by Node as the model says, and by every engine exactly as Node refuses or serves them', async (t) => {
  let cases = 0;
  const started = performance.now();
  const kinds = new Map<string, number>();
  await fc
    .assert(
      fc.asyncProperty(
        fc.array(reqArb(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        mutations(),
        deliveryArb,
        async (reqs, which, mutation, d) => {
          cases++;
          kinds.set(mutation.name, (kinds.get(mutation.name) ?? 0) + 1);
          const k = which % reqs.length;
          const texts = reqs.map((r, i) => (i === k ? mutation.apply(render(r), r) : bytesOf(render(r))));
          const bytes = Buffer.from(texts.join(''), 'latin1');
          const { node } = await differential(
            bytes,
            cutsOf(bytes, d),
            reqs.map((r) => r.method),
          );
          if (mutation.expect === 'either' || !reqs.slice(0, k).every(keepsOpen)) return;
          // The oracle: the mutated request reached no backend whole and got the router's error
          // with l5d-err; a refused one also ends the connection.
          const last = node.statuses.length - 1;
          const ok =
            mutation.expect === 'refused'
              ? node.closed && completeAtBackend(node) <= k && last >= 0 && (node.statuses[last] as number) >= 400 && node.errs[last] === true
              : node.errs.includes(true) && completeAtBackend(node) < reqs.length;
          if (!ok)
            throw new Error(`Node's engine did not refuse ${mutation.name}\nbytes: ${JSON.stringify(bytes.toString('latin1'))}\nnode: ${JSON.stringify(node)}`);
        },
      ),
      { seed: SEED, numRuns: runs(60), endOnFailure: process.env.SERVER_FUZZ_SHRINK === undefined },
    )
    .catch(failed);
  t.ok(cases >= runs(60), `${cases} cases, ${kinds.size} kinds of mutation, on ${ENGINES.join(' and ')} (${Math.round(performance.now() - started)} ms)`);
});

// ---------------------------------------------------------------------------------------------
// Named cases: each hostile form once, whole and cut at every byte, with what Node's engine does.

const GET = 'GET /named HTTP/1.1\r\nHost: world\r\n';
const POST = 'POST /named HTTP/1.1\r\nHost: world\r\n';
const NEXT = 'GET /next HTTP/1.1\r\nHost: world\r\n\r\n';

interface Named {
  readonly name: string;
  readonly bytes: string;
  /**
   * refused: the last answer is an error with l5d-err, the connection is closed, no complete
   * request of it reached the backend; rejected: the same without the close; served: answered
   * 1xx/2xx only; either: compared between the engines only.
   */
  readonly expect: 'refused' | 'rejected' | 'served' | 'either';
  /** Node's answer depends on how the bytes arrive (its listener loses answers: see INTENDED). */
  readonly timing?: true;
  /** Also cut at every byte (the framing cases); the others are cut at three places. */
  readonly everyByte?: true;
  /** Cut here too (each piece its own read), where a case was found. */
  readonly cuts?: readonly number[];
  /** The trailer fields the backend got with the request (served cases). */
  readonly trailers?: readonly [string, string][];
}

const NAMED: Named[] = [
  { name: 'CL+TE', bytes: `${POST}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`, expect: 'refused', everyByte: true },
  { name: 'TE+CL', bytes: `${POST}Transfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\n${NEXT}`, expect: 'refused', everyByte: true },
  { name: 'two differing Content-Lengths', bytes: `${POST}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!${NEXT}`, expect: 'refused', everyByte: true },
  { name: 'two equal Content-Lengths', bytes: `${POST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello${NEXT}`, expect: 'refused' },
  { name: 'signed Content-Length', bytes: `${POST}Content-Length: +5\r\n\r\nhello${NEXT}`, expect: 'refused' },
  { name: 'negative Content-Length', bytes: `${POST}Content-Length: -5\r\n\r\nhello${NEXT}`, expect: 'refused' },
  { name: 'hex Content-Length', bytes: `${POST}Content-Length: 0x5\r\n\r\nhello${NEXT}`, expect: 'refused' },
  { name: 'Transfer-Encoding: xchunked', bytes: `${POST}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`, expect: 'refused' },
  {
    name: 'Transfer-Encoding: chunked, identity',
    bytes: `${POST}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
    everyByte: true,
  },
  {
    name: 'Transfer-Encoding twice (chunked, then identity)',
    bytes: `${POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
  },
  // RFC 9112 5.2: obs-fold is rejected with 400 (or replaced by spaces); Node rejects it.
  { name: 'obs-fold', bytes: `${GET}X-Folded: a\r\n b\r\n\r\n${NEXT}`, expect: 'refused' },
  {
    name: 'obs-fold of Transfer-Encoding',
    bytes: `${POST}Transfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
    everyByte: true,
  },
  // RFC 9112 2.2 lets a recipient accept a bare LF; Node's strict llhttp refuses it.
  { name: 'bare LF line ends', bytes: `GET /named HTTP/1.1\nHost: world\n\n${NEXT}`, expect: 'refused', everyByte: true },
  { name: 'bare CR line end', bytes: `GET /named HTTP/1.1\rHost: world\r\n\r\n${NEXT}`, expect: 'refused', everyByte: true },
  { name: 'bare CR in a value', bytes: `${GET}X-A: a\rb\r\n\r\n${NEXT}`, expect: 'refused' },
  { name: 'NUL in a value', bytes: `${GET}X-A: a\x00b\r\n\r\n${NEXT}`, expect: 'refused', everyByte: true },
  { name: 'NUL in a name', bytes: `${GET}X-\x00A: ab\r\n\r\n${NEXT}`, expect: 'refused' },
  { name: 'control character in a value', bytes: `${GET}X-A: a\x01b\r\n\r\n${NEXT}`, expect: 'refused' },
  { name: 'control character in a name', bytes: `${GET}X\x0bA: ab\r\n\r\n${NEXT}`, expect: 'refused' },
  { name: 'bad chunk size', bytes: `${POST}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n${NEXT}`, expect: 'refused', everyByte: true },
  {
    name: 'chunk size overflowing 64 bits',
    bytes: `${POST}Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
  },
  // The head and the first bytes of the body are on their way before the bad ones arrive: the
  // backend sees an unfinished request that is then cut, never a whole one.
  {
    name: 'chunk data longer than its size',
    bytes: `${POST}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
    everyByte: true,
  },
  { name: 'bad chunk extension', bytes: `${POST}Transfer-Encoding: chunked\r\n\r\n5;\x01\r\nhello\r\n0\r\n\r\n${NEXT}`, expect: 'refused' },
  {
    name: 'chunk extensions',
    bytes: `${POST}Transfer-Encoding: chunked\r\n\r\n5;a=b;c="d e"\r\nhello\r\n0;z\r\n\r\n${NEXT}`,
    expect: 'served',
    everyByte: true,
  },
  { name: 'a 17 KiB head', bytes: `${GET}X-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n${NEXT}`, expect: 'refused' },
  {
    name: 'more fields than maxHeaders',
    bytes: `${GET}${Array.from({ length: MAX_HEADERS }, (_, i) => `X-Pad-${i}: 1\r\n`).join('')}\r\n${NEXT}`,
    expect: 'rejected',
  },
  {
    name: 'exactly maxHeaders fields',
    bytes: `${GET}${Array.from({ length: MAX_HEADERS - 1 }, (_, i) => `X-Pad-${i}: 1\r\n`).join('')}\r\n${NEXT}`,
    expect: 'served',
  },
  { name: 'HTTP/1.2', bytes: `GET /named HTTP/1.2\r\nHost: world\r\n\r\n${NEXT}`, expect: 'refused' },
  // Node's llhttp serves an HTTP/2.0 request line as an HTTP/1 message (RFC 9110 15.6.6 would be
  // a 505): what the engines do is compared; reported.
  { name: 'HTTP/2.0 request line', bytes: 'GET /named HTTP/2.0\r\nHost: world\r\n\r\n', expect: 'either' },
  { name: 'HTTP/2 preface', bytes: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: 'refused' },
  { name: 'missing Host (HTTP/1.1)', bytes: `GET /named HTTP/1.1\r\nX-A: 1\r\n\r\n${NEXT}`, expect: 'rejected' },
  // RFC 9112 3.2: 400, closed; the request after it is not served (Node's engine served it until session 13).
  { name: 'duplicate Host (differing)', bytes: `${GET}Host: elsewhere\r\n\r\n${NEXT}`, expect: 'refused' },
  { name: 'duplicate Host (same)', bytes: `${GET}Host: world\r\n\r\n${NEXT}`, expect: 'refused' },
  // One answer: Node's engine answered the bad chunk behind the refused head with a second 400.
  {
    name: 'duplicate Host, then a bad chunk size',
    bytes: `${POST}Host: world\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
  },
  { name: 'space before a colon', bytes: `${GET}X-A : 1\r\n\r\n${NEXT}`, expect: 'refused' },
  {
    name: 'space before the colon of Transfer-Encoding',
    bytes: `${POST}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello${NEXT}`,
    expect: 'refused',
    everyByte: true,
  },
  // RFC 9112 6.1: faulty framing (llhttp reads it chunked, an HTTP/1.0 server would not): refused
  // and closed, kept alive or not (until session 13 both engines served it, the lean one kept the
  // connection alive and served the request after it). Node's engine read on behind a refused head
  // and served what followed, or answered a bad chunk after it with a second 400: no longer.
  {
    name: 'HTTP/1.0 with chunked',
    bytes: 'POST /named HTTP/1.0\r\nHost: world\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    expect: 'refused',
  },
  {
    name: 'HTTP/1.0 with chunked, kept alive',
    bytes: `POST /named HTTP/1.0\r\nHost: world\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
  },
  // RFC 9112 6.1: 501. llhttp takes off the chunks only: the gzip bytes went on as the content.
  { name: 'a transfer coding before chunked', bytes: `${POST}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`, expect: 'refused' },
  {
    name: 'Transfer-Encoding: identity, chunked',
    bytes: `${POST}Transfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${NEXT}`,
    expect: 'refused',
  },
  // RFC 9112 3.2: no request-target has a fragment; llhttp takes one, and the app saw `/named#x`
  // (a path to an app that reads '#' as a path character, while policy paths end at it).
  { name: 'a fragment in the target', bytes: `GET /named#/../x HTTP/1.1\r\nHost: world\r\n\r\n${NEXT}`, expect: 'refused' },
  { name: 'a fragment in an absolute-form target', bytes: `GET http://world/named#x HTTP/1.1\r\nHost: world\r\n\r\n${NEXT}`, expect: 'refused' },
  // RFC 9112 3.2.2: the authority of an absolute-form target wins over Host.
  { name: 'absolute-form with a differing Host', bytes: `GET http://world/named HTTP/1.1\r\nHost: elsewhere\r\n\r\n${NEXT}`, expect: 'served' },
  { name: 'requests after Connection: close', bytes: `${GET}Connection: close\r\n\r\n${NEXT}`, expect: 'either', timing: true },
  {
    name: 'a hostile request after a good one',
    bytes: `${GET}\r\nGET /bad HTTP/1.1\r\nHost: world\r\nContent-Length: +1\r\n\r\nx`,
    expect: 'either',
    timing: true,
  },
  {
    name: 'Expect: 100-continue with its body',
    bytes: `${POST}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello${NEXT}`,
    expect: 'served',
    everyByte: true,
  },
  {
    name: 'Expect: 100-continue, its body and the next request in three writes',
    bytes: `PUT /named HTTP/1.1\r\nHost: world\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello${NEXT}`,
    expect: 'served',
    cuts: [77, 82],
  },
  {
    name: 'request trailers',
    bytes: `${POST}Transfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n${NEXT}`,
    expect: 'served',
    everyByte: true,
  },
  // The router's own fields are not passed on in a trailer either (an app merging trailers into
  // the head would take a pod's l5d-client-id for the router's); until session 13 they were.
  {
    name: "request trailers naming the router's own fields",
    bytes: `${POST}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nl5d-client-id: admin\r\nl5d-dtab: /svc=>/$/nil\r\nVia: 1.1 x\r\nx-sum: 1\r\n\r\n${NEXT}`,
    expect: 'served',
    trailers: [['x-sum', '1']],
  },
  {
    name: 'Upgrade: h2c (served over HTTP/1.1)',
    bytes: `${GET}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n${NEXT}`,
    expect: 'served',
  },
  {
    name: 'HEAD, 204 and 304 framing',
    bytes: `HEAD /named HTTP/1.1\r\nHost: world\r\n\r\nGET /s/204 HTTP/1.1\r\nHost: world\r\n\r\nGET /s/304 HTTP/1.1\r\nHost: world\r\n\r\n${NEXT}`,
    expect: 'served',
    everyByte: true,
  },
];

const methodsOf = (bytes: string): string[] => [...bytes.matchAll(/(?:^|\r\n\r\n|\n\n)([A-Z]+) \S+ HTTP/g)].map((m) => m[1] as string);

/** One named case on every engine: its expectation on Node's engine, then the comparisons. */
async function namedCase(t: Test, c: Named): Promise<void> {
  const bytes = Buffer.from(c.bytes, 'latin1');
  const methods = methodsOf(c.bytes);
  const whole = (await differential(bytes, [], methods)).node;
  if (process.env.SERVER_DIFF_SHOW !== undefined) t.comment(`${c.name}: ${JSON.stringify({ ...whole, bodies: undefined })}`);
  const last = whole.statuses.length - 1;
  const lastIsError = last >= 0 && (whole.statuses[last] as number) >= 400 && whole.errs[last] === true;
  const named = whole.backend.filter((b) => b.complete && b.target === '/named');
  if (c.expect === 'refused') {
    t.ok(whole.closed && lastIsError, `${c.name}: refused with l5d-err, closed (${whole.statuses.join(',')})`);
    t.equal(named.length + whole.backend.filter((b) => b.target === '/next').length, 0, `${c.name}: nothing of it reached the backend whole`);
  } else if (c.expect === 'rejected') {
    t.ok(whole.errs.includes(true), `${c.name}: answered with l5d-err (${whole.statuses.join(',')})`);
    t.equal(named.length, 0, `${c.name}: nothing of it reached the backend`);
  } else if (c.expect === 'served') {
    t.ok(
      whole.statuses.length > 0 && whole.statuses.every((s) => s < 400) && !whole.errs.includes(true) && !whole.hung,
      `${c.name}: served (${whole.statuses.join(',')})`,
    );
    if (c.trailers !== undefined) t.same(named[0]?.trailers, c.trailers, `${c.name}: the backend got these trailers only`);
  }
  // Cut (the framing cases at every byte), each piece its own read: Node's engine reads it as
  // it read the whole, and every engine as Node's does with the same cuts.
  const cuts = c.everyByte === true ? everyByte(bytes) : [1, Math.floor(bytes.length / 2), bytes.length - 1];
  const cut = (await differential(bytes, cuts, methods)).node;
  if (c.timing !== true) t.same(comparable(cut), comparable(whole), `${c.name}: the same when cut${c.everyByte === true ? ' at every byte' : ''}`);
  if (c.cuts !== undefined) {
    const at = (await differential(bytes, c.cuts, methods)).node;
    t.same(comparable(at), comparable(whole), `${c.name}: the same when cut at ${c.cuts.join(', ')}`);
  }
}

t.test('named hostile cases: each as Node answers it, whole and cut at every byte, the same on every engine', async (t) => {
  for (const c of NAMED) {
    // Every case runs: a difference fails that case and the next one is still compared.
    try {
      await namedCase(t, c);
    } catch (err) {
      t.fail(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
});

t.test('intended differences met in this run', async (t) => {
  for (const d of INTENDED) t.comment(`${d.name} (${d.rfc}): ${intendedMet.get(d.name) ?? 0}`);
  t.pass(`${[...intendedMet.values()].reduce((a, b) => a + b, 0)} cases differed only as intended`);
  // A case that differed once and agreed on its second run: listed, so a timing difference that
  // keeps coming back is seen.
  t.comment(`${rerun.length} cases agreed only on a second run${rerun.length > 0 ? `: ${rerun.join(', ')}` : ''}`);
  t.ok(rerun.length <= 5, 'at most a few cases needed a second run');
});

t.test('the comparison tells a laxer server apart: a node engine with larger head limits differs on them', async (t) => {
  // What a lean engine that skipped the limits would look like; the harness must see it.
  const lax = await startEngineRouters(IP, backendPort, { headersTimeoutMs: 30_000, idleTimeoutMs: 60_000, maxHeaders: 200, maxHeaderBytes: 64 * 1024 }, [
    'node',
  ]);
  t.teardown(() => lax.close());
  for (const name of ['a 17 KiB head', 'more fields than maxHeaders']) {
    const c = NAMED.find((n) => n.name === name) as Named;
    const bytes = Buffer.from(c.bytes, 'latin1');
    const methods = methodsOf(c.bytes);
    const strict = await run('node', [bytes], methods);
    const laxer = await run('node', [bytes], methods, { routers: lax });
    t.notSame(comparable(laxer), comparable(strict), `${name}: the outcomes differ`);
    t.notOk(
      INTENDED.some((d) => d.holds(strict, laxer, bytes)),
      `${name}: and no intended difference excuses it`,
    );
  }
});

t.test('over mTLS (a peer router on an inbound listener): the smuggling cases, whole and cut at every byte, the same on every engine', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hostmesh-server-diff-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { ca, peer } = await writeListenerPki(dir, IP, { node: 'node-b', peer: 'node-a' });
  const tlsFiles = { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), caCertPath: join(dir, 'ca.pem'), requireClientAuth: true };
  const secured = await startEngineRouters(IP, backendPort, { ...SERVER, tls: tlsFiles }, ENGINES);
  t.teardown(() => secured.close());
  const target: Target = { routers: secured, tls: asPeer(ca, peer) };
  for (const c of NAMED.filter((n) => n.everyByte === true).slice(0, 6)) {
    const bytes = Buffer.from(c.bytes, 'latin1');
    const methods = methodsOf(c.bytes);
    const whole = (await differential(bytes, [], methods, target)).node;
    const plain = (await differential(bytes, [], methods)).node;
    // The same as over plaintext, but for what an inbound listener adds (none of it compared here).
    t.same(
      { statuses: whole.statuses, errs: whole.errs, closed: whole.closed, backend: whole.backend.length },
      { statuses: plain.statuses, errs: plain.errs, closed: plain.closed, backend: plain.backend.length },
      `${c.name}: answered over mTLS as over plaintext`,
    );
    await differential(bytes, everyByte(bytes), methods, target);
  }
});
