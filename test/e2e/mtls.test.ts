// The incoming port (4141) accepts only peers with a certificate signed by the mesh CA.

import '../helpers/test-keys.js'; // 1024-bit RSA keys for the certificates made here: key size is not what this file tests
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { startDemo, type Demo } from '../../src/demo/demo.js';
import { silentLogger } from '../../src/log.js';
import { createCa, issueNodeCertificate } from '../../src/tls/generate.js';
import { freePorts } from '../helpers/ports.js';

const B = '127.0.0.3';
let demo: Demo;
let incoming: number;

t.before(async () => {
  const [outgoing, inc, admin] = (await freePorts('127.0.0.2', 3)) as [number, number, number];
  incoming = inc;
  demo = await startDemo(silentLogger(), { outgoing, incoming, admin });
});
t.teardown(() => demo.close());

function handshake(options: tls.ConnectionOptions): Promise<'ok' | string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: B, port: incoming, servername: 'hostmesh', rejectUnauthorized: false, ...options }, () => {
      // TLS 1.3: the server may reject the client certificate after the client's handshake completes.
      socket.write('GET /admin/ping HTTP/1.1\r\nhost: world\r\n\r\n');
    });
    let data = '';
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('error', (err) => resolve(err.message));
    socket.on('close', () => resolve(data.startsWith('HTTP/1.1') ? 'ok' : `closed: ${data}`));
  });
}

t.test('a mesh certificate is accepted and the request is delivered', async (t) => {
  const dir = join(demo.dir, 'certs');
  const ca = await readFile(join(dir, 'ca.pem'));
  const agent = new https.Agent({
    ca,
    cert: await readFile(join(dir, 'node-a.pem')),
    key: await readFile(join(dir, 'node-a.key')),
    servername: 'hostmesh',
    checkServerIdentity: (_h, cert) => tls.checkServerIdentity('hostmesh', cert),
  });
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get({ host: B, port: incoming, path: '/', headers: { host: 'world' }, agent }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
  agent.destroy();
  t.equal(body, 'world (node-b)\n');
});

t.test('no client certificate is refused', async (t) => {
  t.not(await handshake({}), 'ok');
});

t.test('a certificate from another CA is refused', async (t) => {
  const other = createCa({ commonName: 'evil CA', days: 1 });
  const cert = issueNodeCertificate(other, 'hostmesh', { name: 'node-x', ip: '127.0.0.9' }, 1);
  t.not(await handshake({ cert: cert.certPem, key: cert.keyPem }), 'ok');
});

t.test('plaintext HTTP on the TLS port gets no HTTP answer', async (t) => {
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(incoming, B, () => s.write('GET / HTTP/1.1\r\nhost: world\r\n\r\n'));
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString('latin1')));
    s.on('error', () => resolve(data));
    s.on('close', () => resolve(data));
  });
  t.notMatch(reply, /^HTTP\/1\.1 200/);
});
