// Linkerd 1's telemetry list and httpAccessLog* keys in a config: enforced ones become config,
// telemeters hostmesh does not run are warned with what is lost, wrong values and unknown kinds
// are errors with file:line:col.

import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const base = (extra: string, routerExtra = ''): string => `${extra}
routers:
- protocol: http
  label: outgoing
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers: [{port: 4140}]
${routerExtra}`;

function problems(text: string): readonly string[] {
  try {
    parseConfig(text, '/etc/l5d/l5d.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

t.test('io.l5d.prometheus with its path and prefix', async (t) => {
  const { config } = parseConfig(base('telemetry:\n- kind: io.l5d.prometheus\n  path: /metrics/l5d\n  prefix: linkerd_'), '/etc/l5d/l5d.yaml');
  t.same(config.telemetry, { prometheus: { path: '/metrics/l5d', prefix: 'linkerd_' } });
  t.equal(parseConfig(base(''), 'x.yaml').config.telemetry, undefined, 'no telemetry: no Linkerd 1 names');
});

t.test('telemeters not run are warned with what is lost; wrong ones are errors', async (t) => {
  const { warnings } = parseConfig(base('telemetry:\n- kind: io.l5d.zipkin\n  host: zipkin\n- kind: io.l5d.statsd'), 'l5d.yaml');
  t.match(warnings[0], /^l5d\.yaml:2:3: telemetry\[0\]: io\.l5d\.zipkin: accepted, not enforced: no spans are sent to Zipkin$/);
  t.match(warnings[1], /telemetry\[1\]: io\.l5d\.statsd: accepted, not enforced: no metrics are sent to StatsD/);
  t.match(problems(base('telemetry:\n- kind: io.l5d.graphite')), [/l5d\.yaml:2:9: telemetry\[0\]\.kind: unknown telemeter kind 'io\.l5d\.graphite'/]);
  t.match(problems(base('telemetry:\n- kind: io.l5d.prometheus\n  prefix: "bad prefix"')), [/telemetry\[0\]\.prefix: a Prometheus name prefix/]);
  t.match(problems(base('telemetry:\n- kind: io.l5d.prometheus\n  scrape: 1')), [/telemetry\[0\]\.scrape: unknown key/]);
  t.match(problems(base('telemetry:\n- kind: io.l5d.prometheus\n- kind: io.l5d.prometheus')), [/listed twice/]);
  t.match(problems(base('telemetry: io.l5d.prometheus')), [/telemetry: a list of telemeters/]);
});

t.test('httpAccessLog and its roll keys', async (t) => {
  const { config, warnings } = parseConfig(
    base('', '  httpAccessLog: logs/access.log\n  httpAccessLogRollPolicy: Weekly(2)\n  httpAccessLogAppend: false\n  httpAccessLogRotateCount: 5\n'),
    '/etc/l5d/l5d.yaml',
  );
  t.same(config.routers[0]?.accessLog, {
    path: '/etc/l5d/logs/access.log',
    rollPolicy: { kind: 'weekly', day: 2 },
    append: false,
    rotateCount: 5,
    bufferBytes: 1024 * 1024,
  });
  t.same(warnings, [], 'no "accepted, not enforced" any more');
  t.match(problems(base('', '  httpAccessLog: a.log\n  httpAccessLogRollPolicy: monthly\n')), [
    /routers\[0\]\.httpAccessLogRollPolicy: Never, Hourly, Daily, Weekly/,
  ]);
  t.match(problems(base('', '  httpAccessLog: a.log\n  httpAccessLogRotateCount: -2\n')), [/httpAccessLogRotateCount/]);
  const orphan = parseConfig(base('', '  httpAccessLogRollPolicy: daily\n'), 'l5d.yaml');
  t.match(orphan.warnings[0], /httpAccessLog\* keys without httpAccessLog: no access log is written/);
  t.equal(orphan.config.routers[0]?.accessLog, undefined);
});
