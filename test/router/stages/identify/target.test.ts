// Target normalization and the default identifier together, as the router names a request: Host
// (or an absolute-form URI's authority) becomes /svc/<host>, the target becomes origin-form.

import t from 'tap';
import { Path } from '../../../../src/dtab/path.js';
import { normalizeHost, normalizeTarget } from '../../../../src/router/stages/identify/target.js';
import { buildIdentifiers } from '../../../../src/router/stages/identify/identifiers.js';
import { HostmeshError } from '../../../../src/errors.js';

const byHost = buildIdentifiers([{ kind: 'io.l5d.header.token' }], Path.of('svc'));

/** What the router does with a request line and Host: normalize, then the default identifier. */
function identify(method: string, url: string, hostHeader: string | undefined): { name: Path; target: string; host: string | undefined } {
  const { host, target } = normalizeTarget(url, hostHeader);
  const id = byHost({ method, host, target, httpVersion: '1.1', header: () => undefined });
  return { ...id, host };
}

t.test('origin-form requests are named by Host', async (t) => {
  const id = identify('GET', '/a?b=1', 'World');
  t.equal(id.name.show(), '/svc/world');
  t.equal(id.target, '/a?b=1');
  t.equal(id.host, 'world');
});

t.test('absolute-form requests take Host from the URI and become origin-form', async (t) => {
  const cases: [string, string, string][] = [
    ['http://world/', '/svc/world', '/'],
    ['http://world', '/svc/world', '/'],
    ['http://world:8080/x/y?z', '/svc/world:8080', '/x/y?z'],
    ['http://world:80/x', '/svc/world', '/x'],
    ['http://world?q=1', '/svc/world', '/?q=1'],
    ['HTTP://World/x', '/svc/world', '/x'],
  ];
  for (const [url, name, target] of cases) {
    const id = identify('GET', url, 'ignored');
    t.equal(id.name.show(), name, url);
    t.equal(id.target, target, url);
  }
});

t.test('bad input is a catalogued 400', async (t) => {
  const bad: [string, string | undefined, string][] = [
    ['/', undefined, 'NO_HOST'],
    ['/', '', 'NO_HOST'],
    ['/', 'wor ld', 'BAD_REQUEST'],
    ['/', 'world:99999', 'BAD_REQUEST'],
    ['/', 'world\u0001', 'BAD_REQUEST'],
    ['https://world/', undefined, 'BAD_REQUEST'],
    ['ftp://world/', undefined, 'BAD_REQUEST'],
    ['http://user@world/', undefined, 'BAD_REQUEST'],
    ['world/x', undefined, 'BAD_REQUEST'],
  ];
  for (const [url, host, code] of bad) {
    let caught: unknown;
    try {
      identify('GET', url, host);
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof HostmeshError, `${url} ${host} throws a HostmeshError`);
    t.equal((caught as HostmeshError).code, code, `${url} ${host}`);
    t.equal((caught as HostmeshError).status, 400);
  }
});

t.test('IPv6 literal hosts are valid', async (t) => {
  t.equal(normalizeHost('[::1]:8080'), '[::1]:8080');
});
