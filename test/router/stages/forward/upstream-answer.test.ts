// The HTTP/1 attempt on undici's dispatch API (upstream-answer.ts), over real sockets: a real
// backend, a real undici Pool, and a real client reading a real ServerResponse. What a client of
// the router would notice: the body and trailers relayed whole, a cut never looking complete,
// and memory bounded while an answer waits for the attempt loop's decision or is dropped.

import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { Pool } from 'undici';
import { headersOf, markFieldsOf, UpstreamAnswer } from '../../../../src/router/stages/forward/upstream-answer.js';

const HOST = '127.0.0.1';

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

/** A backend whose answers the test decides per path; it records how each request ended. */
function backend(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const seen = { closedEarly: 0, written: 0 };
  const server = http.createServer((req, res) => {
    res.on('close', () => {
      if (!res.writableFinished) seen.closedEarly++;
    });
    answer(req, res);
  });
  return { server, seen };
}

/** Writes `total` bytes in 64 KiB chunks with back-pressure; counts what the socket took. */
function writeBig(res: http.ServerResponse, total: number, seen: { written: number }): void {
  const chunk = Buffer.alloc(65_536, 120);
  let sent = 0;
  const more = (): void => {
    while (sent < total) {
      sent += chunk.length;
      seen.written = sent;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  res.writeHead(200, { 'content-length': String(total) });
  more();
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('relays head, body and trailers; the head is kept raw, its l5d- fields read into lowercase fields', async (t) => {
  const b = backend((_req, res) => {
    res.writeHead(200, { 'X-One': 'a', 'Set-Cookie': ['s=1', 't=2'], 'L5D-Retryable': 'true', trailer: 'x-sum', 'transfer-encoding': 'chunked' });
    res.write('hello ');
    res.addTrailers({ 'X-Sum': '42' });
    res.end('world');
  });
  const pool = new Pool(`http://${HOST}:${await listen(b.server)}`);
  const front = http.createServer(async (_req, res) => {
    const answer = new UpstreamAnswer(res, new EventEmitter());
    await answer.dispatch(pool, { method: 'GET', path: '/', headers: {} });
    t.equal(answer.status, 200);
    const fields = headersOf(answer.raw);
    t.equal(fields['x-one'], 'a');
    t.same(fields['set-cookie'], ['s=1', 't=2']);
    t.same({ ...answer.headers }, { 'l5d-retryable': 'true' }, 'only the l5d- fields are read into an object');
    res.writeHead(answer.status, { 'x-one': String(fields['x-one']), trailer: 'x-sum' });
    await answer.relay(() => t.fail('no error'));
  });
  const port = await listen(front);
  const got = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
    http
      .get({ host: HOST, port, path: '/' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ body, trailers: res.trailers }));
      })
      .on('error', reject);
  });
  t.equal(got.body, 'hello world');
  t.equal(got.trailers['x-sum'], '42', 'the trailer arrives after the body');
  front.close();
  await pool.close();
  b.server.close();
});

t.test('an answer waiting for the decision is held up to a bound; the backend is held back meanwhile', async (t) => {
  const TOTAL = 64 * 1048576;
  const b = backend((_req, res) => writeBig(res, TOTAL, b.seen));
  const pool = new Pool(`http://${HOST}:${await listen(b.server)}`);
  let answer: UpstreamAnswer | undefined;
  let clientRes: http.ServerResponse | undefined;
  const front = http.createServer((_req, res) => {
    clientRes = res;
    answer = new UpstreamAnswer(res, new EventEmitter());
    void answer.dispatch(pool, { method: 'GET', path: '/', headers: {} });
  });
  const port = await listen(front);
  let received = 0;
  const done = new Promise<boolean>((resolve) => {
    http.get({ host: HOST, port, path: '/' }, (res) => {
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('end', () => resolve(res.complete));
    });
  });
  // Not decided for a while: the router reads no more than its hold bound (plus socket buffers).
  await settle(500);
  t.ok(b.seen.written < TOTAL / 2, `the backend was held back (${(b.seen.written / 1048576).toFixed(1)} of 64 MiB written)`);
  t.ok(answer !== undefined && clientRes !== undefined, 'the head arrived');
  clientRes?.writeHead(200, { 'content-length': String(TOTAL) });
  await answer?.relay(() => t.fail('no error'));
  t.equal(await done, true, 'then the whole body is relayed');
  t.equal(received, TOTAL);
  front.close();
  await pool.close();
  b.server.close();
});

t.test('a dropped answer is read up to a bound, then its connection is given up', async (t) => {
  const b = backend((req, res) => {
    if (req.url === '/small') return void res.end('small');
    writeBig(res, 64 * 1048576, b.seen);
  });
  const pool = new Pool(`http://${HOST}:${await listen(b.server)}`, { connections: 1 });
  const res = new EventEmitter() as unknown as http.ServerResponse; // never written: the answer is dropped
  const small = new UpstreamAnswer(res, new EventEmitter());
  await small.dispatch(pool, { method: 'GET', path: '/small', headers: {} });
  await small.discard();
  const big = new UpstreamAnswer(res, new EventEmitter());
  await big.dispatch(pool, { method: 'GET', path: '/big', headers: {} });
  await big.discard();
  for (let i = 0; i < 100 && b.seen.closedEarly === 0; i++) await settle(20);
  t.equal(b.seen.closedEarly, 1, 'the big answer was cut at the backend, not read to its end');
  t.ok(b.seen.written < 32 * 1048576, `the backend wrote ${(b.seen.written / 1048576).toFixed(1)} MiB of 64`);
  // The pool still serves (a new connection replaces the one given up).
  const again = new UpstreamAnswer(res, new EventEmitter());
  await again.dispatch(pool, { method: 'GET', path: '/small', headers: {} });
  t.equal(again.status, 200);
  await again.discard();
  await pool.close();
  b.server.close();
});

t.test('the client leaving mid-body cancels the upstream request', async (t) => {
  const b = backend((_req, res) => writeBig(res, 256 * 1048576, b.seen));
  const pool = new Pool(`http://${HOST}:${await listen(b.server)}`);
  let relayed: Promise<void> | undefined;
  const front = http.createServer(async (_req, res) => {
    const answer = new UpstreamAnswer(res, new EventEmitter());
    await answer.dispatch(pool, { method: 'GET', path: '/', headers: {} });
    res.writeHead(200);
    relayed = answer.relay(() => undefined);
  });
  const port = await listen(front);
  await new Promise<void>((resolve) => {
    http.get({ host: HOST, port, path: '/' }, (res) => {
      res.once('data', () => {
        res.destroy();
        resolve();
      });
    });
  });
  for (let i = 0; i < 100 && b.seen.closedEarly === 0; i++) await settle(20);
  t.equal(b.seen.closedEarly, 1, 'the backend saw its request cancelled');
  await relayed;
  t.pass('the relay settled');
  front.close();
  await pool.close();
  b.server.close();
});

t.test('the signal before the head aborts the attempt with UND_ERR_ABORTED, even before it is on a connection', async (t) => {
  const b = backend(() => undefined); // never answers
  const pool = new Pool(`http://${HOST}:${await listen(b.server)}`);
  const signal = new EventEmitter();
  const answer = new UpstreamAnswer(new EventEmitter() as unknown as http.ServerResponse, signal);
  const sent = answer.dispatch(pool, { method: 'GET', path: '/', headers: {} });
  // Fire before the request is on a connection too: it is aborted as soon as it gets one.
  signal.emit('abort');
  await t.rejects(sent, { code: 'UND_ERR_ABORTED' });
  await pool.close();
  b.server.close();
});

t.test('markFieldsOf: exactly the l5d- fields of headersOf, strings or Buffers (property)', (t) => {
  const name = fc.oneof(
    fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/),
    fc.stringMatching(/^[lL]5[dD]-[a-zA-Z-]{0,10}$/),
    fc.constantFrom('l5d-', 'L5D-Retryable', 'l5d-hostmesh-requeue', 'l5dx', 'l5-d', '__proto__'),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 12 }), fc.boolean(), (pairs, buffers) => {
      const raw: (Buffer | string)[] = [];
      for (const [k, v] of pairs) {
        if (buffers) raw.push(Buffer.from(k, 'latin1'), Buffer.from(v, 'latin1'));
        else raw.push(k, Buffer.from(v, 'latin1').toString('latin1'));
      }
      const all = headersOf(raw);
      const expected = Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith('l5d-')));
      const got = markFieldsOf(raw);
      return JSON.stringify({ ...got }) === JSON.stringify(expected) && Object.getPrototypeOf(got) === null;
    }),
  );
  t.end();
});

t.test('headersOf: lowercase names, repeats in order as arrays, no prototype keys (property)', (t) => {
  const name = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}$/).chain((n) => fc.constantFrom(n, '__proto__', 'constructor', 'toString'));
  fc.assert(
    fc.property(fc.array(fc.tuple(name, fc.string({ maxLength: 8 })), { maxLength: 12 }), (pairs) => {
      const raw = pairs.flatMap(([k, v]) => [Buffer.from(k, 'latin1'), Buffer.from(v, 'latin1')]);
      const got = headersOf(raw);
      const expected = new Map<string, string[]>();
      for (const [k, v] of pairs) {
        const key = k.toLowerCase();
        expected.set(key, [...(expected.get(key) ?? []), Buffer.from(v, 'latin1').toString('latin1')]);
      }
      if (Object.keys(got).length !== expected.size) return false;
      for (const [k, vs] of expected) {
        const v = got[k];
        if (!Object.hasOwn(got, k)) return false;
        if (vs.length === 1 ? v !== vs[0] : JSON.stringify(v) !== JSON.stringify(vs)) return false;
      }
      return Object.getPrototypeOf(got) === null;
    }),
  );
  t.end();
});
