// The socket limit keys of a server (handshake deadline, pending handshakes, connection caps,
// tunnel idle deadline): they validate with file:line:col errors and reach the loaded config;
// unset, the listener's defaults apply.

import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { SOCKET_DEFAULTS } from '../../src/server/listener.js';

function config(server: string, tls = ''): string {
  return `routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 4141
${server}${tls === '' ? '' : `    tls:\n      certPath: c.pem\n      keyPath: k.pem\n${tls}`}
`;
}

t.test('the keys load into the server config', async (t) => {
  const { config: c } = parseConfig(
    config(
      '    maxConnections: 500\n    maxConnectionsPerSource: 50\n    tunnelIdleTimeoutMs: 60000\n',
      '      handshakeTimeoutMs: 3000\n      maxPendingHandshakes: 256\n',
    ),
    'l5d.yaml',
  );
  const s = c.routers[0]?.servers[0];
  t.equal(s?.maxConnections, 500);
  t.equal(s?.maxConnectionsPerSource, 50);
  t.equal(s?.tunnelIdleTimeoutMs, 60_000);
  t.equal(s?.tls?.handshakeTimeoutMs, 3000);
  t.equal(s?.tls?.maxPendingHandshakes, 256);
});

t.test('unset keys stay unset (the listener defaults apply)', async (t) => {
  const { config: c } = parseConfig(config('', '      requireClientAuth: true\n'), 'l5d.yaml');
  const s = c.routers[0]?.servers[0];
  t.equal(s?.maxConnections, undefined);
  t.equal(s?.tls?.handshakeTimeoutMs, undefined);
  t.same(SOCKET_DEFAULTS, {
    handshakeTimeoutMs: 10_000,
    headersTimeoutMs: 20_000,
    idleTimeoutMs: 300_000,
    tunnelIdleTimeoutMs: 300_000,
    maxConnections: 10_000,
    maxConnectionsPerSource: 1_000,
    maxPendingHandshakes: 512,
  });
});

const bad: [string, string, string, RegExp][] = [
  ['a zero connection cap', '    maxConnections: 0\n', '', /l5d\.yaml:6:21: .*maxConnections/],
  ['a fractional per-source cap', '    maxConnectionsPerSource: 1.5\n', '', /l5d\.yaml:6:30: .*maxConnectionsPerSource/],
  ['a tunnel deadline under 100 ms', '    tunnelIdleTimeoutMs: 5\n', '', /l5d\.yaml:6:26: .*tunnelIdleTimeoutMs/],
  ['a handshake deadline under 100 ms', '', '      handshakeTimeoutMs: 10\n', /l5d\.yaml:9:27: .*handshakeTimeoutMs/],
  ['a handshake deadline over 10 minutes', '', '      handshakeTimeoutMs: 3600000\n', /l5d\.yaml:9:27: .*handshakeTimeoutMs/],
  ['no pending handshakes at all', '', '      maxPendingHandshakes: 0\n', /l5d\.yaml:9:29: .*maxPendingHandshakes/],
  ['a misspelt key', '    maxConnection: 10\n', '', /l5d\.yaml:6:5: .*maxConnection.*unknown key/],
];
for (const [name, server, tls, message] of bad) {
  t.test(`refused: ${name}`, async (t) => {
    const err = (() => {
      try {
        parseConfig(config(server, tls), 'l5d.yaml');
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    t.type(err, ConfigError);
    t.match((err as ConfigError).problems.join('\n'), message);
  });
}
