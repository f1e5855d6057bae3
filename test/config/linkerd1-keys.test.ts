// Keys from Linkerd 1's config reference that hostmesh once called "not a Linkerd 1 key": each is
// now enforced under hostmesh's name, or warned with what is lost; values Jackson read (numbers as
// strings, Linkerd 1's default ports and labels) load as Linkerd 1 read them.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.js';
import { UNENFORCED } from '../../src/config/schema.js';
import { UNENFORCED_OPTIONS } from '../../src/config/kinds.js';
import { LOST } from '../../src/config/linkerd1-lost.js';
import { checkNotes } from '../../src/cli/check-notes.js';
import { problemsOf, router } from '../helpers/config-text.js';
import { repoPath } from '../helpers/paths.js';

const FILE = repoPath('test', 'fixtures', 'linkerd1', 'router-keys.yaml');
const text = readFileSync(FILE, 'utf8');
const env = { NODE_NAME: 'node-a' };

t.test('every key accepted without enforcing says what it loses', async (t) => {
  for (const [kind, keys] of Object.entries(UNENFORCED)) {
    for (const key of keys) t.ok(LOST[`${kind}.${key}`], `${kind}.${key} has a warning text`);
  }
  for (const [kinded, keys] of Object.entries(UNENFORCED_OPTIONS)) {
    const what = kinded.split(':')[0] as string;
    for (const key of keys) t.ok(LOST[`${what}.${key}`], `${kinded} ${key} has a warning text`);
  }
});

t.test('Linkerd 1 router, server, client and h2 keys load: enforced, or warned with what is lost', async (t) => {
  const { config, warnings } = parseConfig(text, 'router-keys.yaml', { env });
  const [out, h2] = config.routers;
  t.equal(config.shutdownGraceMs, 2500, 'admin.shutdownGraceMs is the shutdown grace');
  t.equal(config.admin.port, 9990, 'a port written as a string, as Jackson read it');
  t.equal(out?.servers[0]?.port, 4140, "an http server without port: Linkerd 1's 4140");
  t.equal(h2?.servers[0]?.port, 4142, "an h2 server without port: Linkerd 1's 4142");
  t.equal(h2?.label, 'h2', 'an unlabelled router is named after its protocol');
  t.equal(out?.maxHops, 30, "the server's maxCallDepth is the router's hop limit");
  t.equal(out?.servers[0]?.idleTimeoutMs, 45_000, 'serverSession.idleTimeMs is the idle timeout');
  t.equal(out?.servers[0]?.maxHeaderBytes, (24 + 4) * 1024, "maxHeadersKB (+ Linkerd 1's 4 KB initial line) is the header limit");
  t.equal(h2?.service?.retryBufferSize?.requestBytes, 8192);
  const lost = (w: string): string => w.replace(/^router-keys\.yaml:\d+:\d+: /, '');
  t.same(warnings.map(lost).sort(), [
    'admin.socketOptions: accepted, not enforced: the admin listener keeps default socket options',
    "namers[0].transformers[0].k8sHost: accepted, not enforced: the daemonset's endpoints are read with the io.l5d.k8s namer's API access (its host/port, or in-cluster)",
    "namers[0].transformers[0].k8sPort: accepted, not enforced: the daemonset's endpoints are read with the io.l5d.k8s namer's API access (its host/port, or in-cluster)",
    "namers[0].transformers[0].prefix: accepted, not enforced: bound ids keep the namer's form: Linkerd 1 put /%/<prefix> in front of a transformed id, so l5d-dst-client values, rt:client labels and client.configs prefixes written for /%/ ids differ",
    'routers[0].client.failFast: accepted, not enforced: failed connections are not punished faster: failure accrual and the requeue budget apply as configured',
    'routers[0].client.loadBalancer.enableProbation: accepted, not enforced: an endpoint removed from discovery leaves the balancer at once',
    "routers[0].client.requestAuthorizers: accepted, not enforced: requests are not checked by these authorizers: use hostmesh's authorization policy (docs/authz.md)",
    'routers[0].servers[0].label: accepted, not enforced: metrics name a server by ip/port, not by this label',
    'routers[0].servers[0].serverSession: accepted, not enforced: connections have no maximum lifetime (serverSession.idleTimeMs is enforced as the idle timeout)',
    'routers[0].servers[0].timestampHeader: accepted, not enforced: no timestamp header is added to requests',
    "routers[1].client.initialStreamWindowBytes: accepted, not enforced: connections to endpoints use Node's default HTTP/2 stream window",
    "routers[1].client.maxFrameBytes: accepted, not enforced: connections to endpoints use Node's default maximum frame size",
    'routers[1].h2AccessLog: accepted, not enforced: no access log is written for protocol: h2 routers (httpAccessLog is enforced on http routers)',
    "routers[1].servers[0].headerTableBytes: accepted, not enforced: Node's default HPACK table size (4,096 bytes) is advertised",
    "routers[1].servers[0].windowUpdateRatio: accepted, not enforced: Node's HTTP/2 flow control sends window updates at its own ratio",
    'routers[1].service.classificationTimeoutMs: accepted, not enforced: an answer is classified on its headers (trailers-only gRPC answers) or at its trailers; only one classified on its headers is retried',
    'routers[1].service.retryBufferSize.responseBytes: accepted, not enforced: response streams are not buffered for retries: an answer with a body is never retried',
  ]);
  t.match(
    warnings.find((w) => w.includes('timestampHeader')),
    /^router-keys\.yaml:34:9: /,
    'each warning at its key',
  );
  const notes = checkNotes(config, warnings, env).join('\n');
  t.match(notes, /accepted, not enforced \(17\): .*routers\[1\]\.h2AccessLog/, 'run --check lists every one');
});

t.test('the run --check summary counts unrun telemeters too', async (t) => {
  const { config, warnings } = parseConfig(
    `${router('dtab: /svc => /$/inet/127.0.0.1/1;')}telemetry:\n- kind: io.l5d.prometheus\n- kind: io.l5d.recentRequests\n  sampleRate: 0.25\n`,
    'c.yaml',
    { env },
  );
  t.match(checkNotes(config, warnings, env).join('\n'), /accepted, not enforced \(1\): telemetry\[1\] \(io\.l5d\.recentRequests\)/);
  // The linkerd-zipkin plugin's telemeter, as its README configures it.
  const zipkin = parseConfig(`${router('')}telemetry:\n- kind: io.zipkin.http\n  host: localhost:9411\n  initialSampleRate: 0.02\n`, 'c.yaml', { env });
  t.match(zipkin.warnings[0], /telemetry\[0\]: io\.zipkin\.http: accepted, not enforced: no spans are sent to Zipkin/);
});

/** A one-router config whose only server is `server` (flow YAML). */
const withServer = (server: string): string => `routers:\n- protocol: http\n  servers: [${server}]\n`;

t.test('what stays refused, and where', async (t) => {
  t.match(
    problemsOf(withServer('{port: "http"}'))[0] ?? '',
    /^c\.yaml:\d+:\d+: routers\[0\]\.servers\[0\]\.port: .*expected number/,
    'a string that is no number',
  );
  t.match(problemsOf(withServer('{port: 4140, clearContext: "maybe"}'))[0] ?? '', /clearContext: .*expected boolean/);
  t.match(
    problemsOf('routers:\n- protocol: h2\n  httpAccessLog: a.log\n  servers: [{port: 4142}]\n')[0] ?? '',
    /^c\.yaml:3:18: routers\[0\]\.httpAccessLog: a protocol: h2 router takes h2AccessLog/,
  );
  t.match(problemsOf(router('windowUpdateRatio: 0.5'))[0] ?? '', /routers\[0\]\.windowUpdateRatio: unknown key/, 'h2 keys on an http router stay unknown');
  t.match(
    problemsOf(withServer('{port: 4140, maxCallDepth: 0}'))[0] ?? '',
    /^c\.yaml:3:\d+: routers\[0\]\.servers\[0\]\.maxCallDepth: expected an integer of at least 1/,
  );
  t.match(problemsOf(router('maxHeadersKB: 4096'))[0] ?? '', /routers\[0\]\.maxHeadersKB: maxHeadersKB \+ maxInitialLineKB must come to at most 1024 KB/);
  t.match(
    problemsOf(`admin:\n  shutdownGraceMs: 100\nshutdownGraceMs: 200\n${router('')}`)[0] ?? '',
    /admin\.shutdownGraceMs: differs from the top-level shutdownGraceMs/,
  );
  const merged = problemsOf(
    `routers:\n- protocol: http\n  servers:\n  - &s {port: 4140}\n- protocol: http\n  label: b\n  servers:\n  - <<: *s\n    ip: 0.0.0.0\n`,
  );
  t.match(merged[0] ?? '', /^c\.yaml:8:5: routers\[1\]\.servers\[0\]\.<<: YAML merge keys/, 'merge keys are named as such');
  t.same(problemsOf(withServer('{port: "4140", clearContext: "True"}')), [], 'a number or a boolean as a string loads');
});

t.test("Linkerd 1's classifier kinds and status code lists", async (t) => {
  const h2 = (rc: string): string[] => problemsOf(`routers:\n- protocol: h2\n  servers: [{port: 4142}]\n  service:\n    responseClassifier: ${rc}\n`);
  t.same(h2('{kind: io.l5d.h2.grpc.default, successStatusCodes: [0, 3, 5]}'), [], 'successStatusCodes');
  t.same(h2('{kind: io.l5d.h2.grpc.compliant}'), [], 'io.l5d.h2.grpc.compliant');
  t.same(h2('{kind: io.l5d.h2.retryableAll5XX}'), [], 'io.l5d.h2.retryableAll5XX');
  t.same(h2('{kind: io.l5d.h2.grpc.retryableStatusCodes, retryableStatusCodes: [2, 5, 14, 100]}'), [], 'any integer code, as Linkerd 1');
  t.match(
    h2('{kind: io.l5d.h2.grpc.default, retryableStatusCodes: [14]}')[0] ?? '',
    /retryableStatusCodes: only io\.l5d\.h2\.grpc\.retryableStatusCodes takes/,
    'never ignored',
  );
  t.same(problemsOf(router('service:\n  responseClassifier: {kind: io.l5d.http.retryableAll5XX}')), [], 'io.l5d.http.retryableAll5XX');
  t.match(
    problemsOf(router('service:\n  responseClassifier: {kind: io.l5d.http.retryableRead5XX, successStatusCodes: [0]}'))[0] ?? '',
    /only the io\.l5d\.h2\.grpc\.\* classifiers take successStatusCodes/,
  );
});

t.test('client config prefixes: a transformer prefix (/%/) is refused, a trailing / is ignored as in Linkerd 1', async (t) => {
  const client = (prefix: string): string[] =>
    problemsOf(router(`client:\n  kind: io.l5d.static\n  configs:\n  - prefix: ${prefix}\n    tls: {commonName: linkerd, disableValidation: true}`));
  t.match(
    client('/%/io.l5d.port/4141/#/io.l5d.fs/')[0] ?? '',
    /^c\.yaml:7:15: routers\[0\]\.client\.configs\[0\]\.prefix: a \/%\/ prefix names a transformer's output.*write \/#\/io\.l5d\.fs\/ instead/,
    'its TLS would never apply: refused, saying what to write',
  );
  t.same(client('/#/io.l5d.fs/'), [], 'a trailing slash');
});

t.test('paths in the config are read by run --check, at their position (they failed only at start, without one)', async (t) => {
  const namer = (prefix: string): string[] =>
    problemsOf(`namers:\n- kind: io.l5d.fs\n  rootDir: .\n  prefix: ${prefix}\n${router('dtab: /svc => /#/io.l5d.fs;')}`);
  t.match(namer('io.l5d.fs2')[0] ?? '', /^c\.yaml:4:11: namers\[0\]\.prefix: a path like \/io\.l5d\.fs$/);
  t.match(namer('/a b')[0] ?? '', /^c\.yaml:4:11: namers\[0\]\.prefix: a path like \/io\.l5d\.fs: end of input expected but 'b' found/);
  t.match(problemsOf(router('dstPrefix: /svc/'))[0] ?? '', /routers\[0\]\.dstPrefix: a path like \/svc: /);
  t.match(problemsOf(router('interpreter:\n  transformers:\n  - {kind: io.l5d.replace, path: "/a^b"}'))[0] ?? '', /transformers\[0\]\.path: a path like/);
});

t.test('tls enabled: false turns the block off; under a TLS prefix it is refused, never ignored', async (t) => {
  const text = `routers:\n- protocol: http\n  servers: [{port: 4141, tls: {enabled: false, certPath: a.pem, keyPath: b.pem}}]\n  client:\n    tls: {enabled: false, commonName: linkerd}\n`;
  const { config } = parseConfig(text, 'c.yaml', { env });
  t.equal(config.routers[0]?.client.tls, undefined, 'the client sends plaintext, as Linkerd 1 did (TLS was used before)');
  t.equal(config.routers[0]?.servers[0]?.tls, undefined, 'the server serves plaintext');
  const prefixes = (configs: string): string[] => problemsOf(router(`client:\n  kind: io.l5d.static\n  configs:\n${configs}`));
  t.match(
    prefixes('  - {prefix: "/$/inet/{service}", tls: {commonName: "{service}"}}\n  - {prefix: /$/inet/localhost, tls: {enabled: false}}')[0] ?? '',
    /configs\[1\]\.tls\.enabled: turning TLS off under configs\[0\] \(\/\$\/inet\/\{service\}\), which sets it, is not supported/,
  );
  t.same(prefixes('  - {prefix: /$/inet/localhost, tls: {enabled: false}}'), [], 'with no TLS before it, the block changes nothing');
  t.match(
    problemsOf(router('client:\n  tls: {disableValidation: true, clientAuth: {certPath: c.pem, keyPath: k.pem}}'))[0] ?? '',
    /client\.tls\.disableValidation: disableValidation: true is incompatible with clientAuth/,
    'refused as Linkerd 1 refused it',
  );
});

t.test("Linkerd 1's Istio kinds are refused by name", async (t) => {
  t.match(problemsOf(router('identifier: {kind: io.l5d.k8s.istio}'))[0] ?? '', /identifier kind io\.l5d\.k8s\.istio is refused: Linkerd 1's Istio integration/);
  t.match(
    problemsOf(`namers: [{kind: io.l5d.k8s.istio, experimental: true}]\n${router('')}`)[0] ?? '',
    /namer kind io\.l5d\.k8s\.istio is refused: Istio's Pilot/,
  );
});

t.test('numbers and booleans as strings in keys read outside the schema too', async (t) => {
  const { config } = parseConfig(
    `admin:\n  shutdownGraceMs: "2500"\n${router('httpAccessLog: access.log\nhttpAccessLogRotateCount: "3"\nhttpAccessLogAppend: "false"')}`,
    'c.yaml',
    { env },
  );
  t.equal(config.shutdownGraceMs, 2500);
  t.equal(config.routers[0]?.accessLog?.rotateCount, 3);
  t.equal(config.routers[0]?.accessLog?.append, false);
});

t.test('an empty value is an absent key, as Jackson read it (a list whose entries are all commented out)', async (t) => {
  const text = `admin:
namers:
telemetry:
routers:
- protocol: http
  dtab:
  interpreter:
    kind: default
    transformers:
    # - kind: io.l5d.k8s.localnode
  client:
  servers:
  - port: 4140
`;
  const { config } = parseConfig(text, 'c.yaml', { env });
  t.equal(config.routers[0]?.dtab, '');
  t.same(config.routers[0]?.transformers, []);
  t.equal(config.admin.port, 9990);
  t.match(problemsOf('routers:\n- protocol: http\n  servers:\n'), [/routers\[0\]\.servers: .*expected array/], 'a required key left empty is missing');
});

t.test('an empty value is refused where reading it as absent would weaken security', async (t) => {
  const text = `routers:
- protocol: http
  servers:
  - port: 4141
    ip: 0.0.0.0
    tls:
    clearContext:
  client:
    tls:
authz:
`;
  t.same(problemsOf(text), [
    'c.yaml:6:5: routers[0].servers[0].tls: empty: give it a value, or remove the key (read as absent, an empty value here would weaken security)',
    'c.yaml:7:5: routers[0].servers[0].clearContext: empty: give it a value, or remove the key (read as absent, an empty value here would weaken security)',
    'c.yaml:9:5: routers[0].client.tls: empty: give it a value, or remove the key (read as absent, an empty value here would weaken security)',
    'c.yaml:10:1: authz: empty: give it a value, or remove the key (read as absent, an empty value here would weaken security)',
  ]);
  const tlsInside = 'routers:\n- protocol: http\n  servers:\n  - port: 4141\n    tls:\n      certPath: /c\n      keyPath: /k\n      requireClientAuth:\n';
  t.match(problemsOf(tlsInside), [/^c\.yaml:8:7: routers\[0\]\.servers\[0\]\.tls\.requireClientAuth: empty/]);
});

t.test('a thrift or mux router is refused for its protocol only, not for its own Linkerd 1 keys', async (t) => {
  const thrift = 'routers:\n- protocol: thrift\n  thriftProtocol: binary\n  servers:\n  - {port: 4114, thriftFramed: true}\n  client: {thriftFramed: true}\n';
  const problems = problemsOf(thrift);
  t.equal(problems.length, 1, problems.join(' | '));
  t.match(problems[0] ?? '', /^c\.yaml:2:13: routers\[0\]\.protocol: protocol thrift is refused: hostmesh routes HTTP only/);
});
