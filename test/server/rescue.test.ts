// The one error writer: every catalog code, rendered onto an HTTP response and as raw bytes on a
// socket, gives the same status line, the same l5d-err and the same body; parser errors map to codes.

import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { ERRORS, HostmeshError, type ErrorCode } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { parserError, rescue, rescueRaw } from '../../src/server/rescue.js';
import type { RequestContext } from '../../src/router/context.js';
import { request } from '../helpers/http.js';

const HOST = '127.0.0.1';
const CTX: RequestContext = { service: '/svc/shop', dtab: '/svc=>/#/io.l5d.fs', overrides: '/svc/shop=>/svc/shop-v2' };
const errorFor = (code: string): HostmeshError =>
  new HostmeshError(code as ErrorCode, `${code.toLowerCase()} happened: ü & %`, { detail: 'delegation path:\n  /svc/shop\n    neg (no route)' });

interface Answer {
  statusLine: string;
  headers: Map<string, string>;
  body: string;
}

/** Reads a raw answer until the server closes the connection, and splits it. */
function rawAnswer(port: number, code: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, HOST, () => s.write(`${code}\n`));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ statusLine, headers, body: text.slice(end + 4) });
    });
  });
}

t.test('every catalog code: the HTTP and the raw answer carry the catalog status, l5d-err and the same body', async (t) => {
  const httpServer = http.createServer((req, res) => rescue(res, errorFor((req.url ?? '/').slice(1)), CTX, silentLogger()));
  const rawServer = net.createServer((socket) => {
    socket.once('data', (c: Buffer) => rescueRaw(socket, errorFor(c.toString().trim()), CTX, silentLogger(), 2000));
  });
  await Promise.all([new Promise<void>((r) => httpServer.listen(0, HOST, r)), new Promise<void>((r) => rawServer.listen(0, HOST, r))]);
  t.teardown(() => {
    httpServer.close();
    rawServer.close();
  });
  const httpPort = (httpServer.address() as net.AddressInfo).port;
  const rawPort = (rawServer.address() as net.AddressInfo).port;
  for (const [code, spec] of Object.entries(ERRORS)) {
    const viaHttp = await request({ host: HOST, port: httpPort, path: `/${code}` });
    const viaRaw = await rawAnswer(rawPort, code);
    const message = `${code.toLowerCase()} happened: ü & %`;
    t.equal(viaHttp.status, spec.status, `${code}: HTTP status is the catalog's`);
    t.equal(viaRaw.statusLine, `HTTP/1.1 ${spec.status} ${http.STATUS_CODES[spec.status]}`, `${code}: raw status line`);
    t.equal(decodeURIComponent(String(viaHttp.headers['l5d-err'])), message, `${code}: HTTP l5d-err is the message`);
    t.equal(viaRaw.headers.get('l5d-err'), viaHttp.headers['l5d-err'], `${code}: raw l5d-err is the same`);
    t.equal(viaRaw.headers.get('content-type'), viaHttp.headers['content-type'], `${code}: same content-type`);
    t.equal(viaRaw.headers.get('connection'), 'close', `${code}: a raw answer closes the connection`);
    t.equal(Number(viaRaw.headers.get('content-length')), Buffer.byteLength(viaRaw.body), `${code}: raw content-length is the body's`);
    t.equal(viaRaw.body, viaHttp.body, `${code}: same body`);
    t.equal(
      viaHttp.body,
      `${message}\nservice: /svc/shop\ndtab: /svc=>/#/io.l5d.fs\noverride dtab: /svc/shop=>/svc/shop-v2\ndelegation path:\n  /svc/shop\n    neg (no route)\n`,
      `${code}: the body names the service, the dtabs and the detail`,
    );
  }
});

t.test('a raw answer on a socket that can no longer be written is a destroy, not a throw', async (t) => {
  const [a] = await new Promise<[net.Socket]>((resolve) => {
    const server = net.createServer((s) => {
      s.destroy();
      server.close();
    });
    server.listen(0, HOST, () => {
      const c = net.connect((server.address() as net.AddressInfo).port, HOST);
      c.on('error', () => undefined);
      c.on('close', () => resolve([c]));
    });
  });
  rescueRaw(a, new HostmeshError('NO_ROUTE', 'late'), {}, silentLogger(), 100);
  t.ok(a.destroyed);
});

t.test("Node's parser errors map to catalog codes, and an unknown error is INTERNAL", async (t) => {
  const cases: [Partial<NodeJS.ErrnoException> & { reason?: string }, ErrorCode, RegExp][] = [
    [{ code: 'HPE_HEADER_OVERFLOW', message: 'Header overflow' }, 'HEADERS_TOO_LARGE', /^request line and headers too large$/],
    [{ code: 'ERR_HTTP_REQUEST_TIMEOUT', message: 'Request timeout' }, 'REQUEST_TIMEOUT', /^request headers did not arrive in time$/],
    [
      { code: 'HPE_INVALID_METHOD', message: 'Parse Error: Invalid method encountered', reason: 'Invalid method encountered' },
      'BAD_REQUEST',
      /^bad request: HPE_INVALID_METHOD: Invalid method encountered$/,
    ],
    [{ message: 'Parse Error' }, 'BAD_REQUEST', /^bad request: parse error: Parse Error$/],
  ];
  for (const [fields, code, message] of cases) {
    const err = Object.assign(new Error(fields.message), fields) as NodeJS.ErrnoException;
    const e = parserError(err);
    t.equal(e.code, code, `${fields.code ?? 'no code'} -> ${code}`);
    t.equal(e.status, ERRORS[code].status);
    t.match(e.message, message);
  }
  const internal = await new Promise<Answer>((resolve) => {
    const server = net.createServer((s) => rescueRaw(s, new TypeError('x is undefined'), {}, silentLogger(), 1000));
    server.listen(0, HOST, () => {
      void rawAnswer((server.address() as net.AddressInfo).port, 'x').then((a) => {
        server.close();
        resolve(a);
      });
    });
  });
  t.equal(internal.statusLine, 'HTTP/1.1 500 Internal Server Error', 'a non-catalog error is a 500');
  t.equal(decodeURIComponent(internal.headers.get('l5d-err') ?? ''), 'x is undefined');
});

t.test('catalog message templates fill their parameters', async (t) => {
  const e = HostmeshError.of('HEADERS_TOO_LARGE', 'fields', { max: 100 });
  t.equal(e.message, 'more than 100 header fields');
  t.equal(e.code, 'HEADERS_TOO_LARGE');
  t.equal(HostmeshError.of('SHUTTING_DOWN', 'draining').message, 'router is shutting down');
  t.equal(HostmeshError.of('CONNECT_REFUSED', 'port', { authority: 'world:443' }).message, 'CONNECT world:443: only port 80 of mesh names is tunnelled');
});
