// The identify stage alone (stages/identify/identify.ts): what it refuses before any routing (a Via loop,
// a deadline already past, on an injected clock), the targets it normalizes, and the names it gives.

import t from 'tap';
import { parsePath } from '../../../../src/dtab/parse.js';
import { HostmeshError } from '../../../../src/errors.js';
import type { RequestContext } from '../../../../src/router/context.js';
import { formatDeadline } from '../../../../src/router/deadline.js';
import { buildIdentifiers } from '../../../../src/router/stages/identify/identifiers.js';
import type { IdentifierConfig } from '../../../../src/config/types.js';
import { type Arrival, IdentifyStage, type RequestHead } from '../../../../src/router/stages/identify/identify.js';
import type { TimeoutKind } from '../../../../src/router/stages/forward/forward.js';

const T0 = 1_700_000_000_000;

function stage(options: { maxHops?: number; totalTimeoutMs?: number; identifiers?: IdentifierConfig[]; now?: () => number } = {}): {
  s: IdentifyStage;
  timeouts: TimeoutKind[];
} {
  const timeouts: TimeoutKind[] = [];
  const s = new IdentifyStage({
    identify: buildIdentifiers(options.identifiers ?? [{ kind: 'io.l5d.header.token', header: 'Host' }], parsePath('/svc')),
    maxHops: options.maxHops ?? 3,
    now: options.now ?? (() => T0),
    totalTimeoutMs: () => options.totalTimeoutMs,
    events: { timeout: (k) => timeouts.push(k) },
  });
  return { s, timeouts };
}

const head = (url: string, headers: Record<string, string | string[]> = {}, method = 'GET', httpVersion = '1.1'): RequestHead => ({
  method,
  url,
  headers: { host: 'world', ...headers },
  httpVersion,
});

/** What a request sees of an arrival (other fields the stage keeps for itself are left out). */
const shown = (a: Arrival): Pick<Arrival, 'method' | 'host' | 'target' | 'deadline'> => ({
  method: a.method,
  host: a.host,
  target: a.target,
  deadline: a.deadline,
});

/** The catalog code arrive/name threw, or 'ok'. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof HostmeshError ? err.code : `not a HostmeshError: ${String(err)}`;
  }
}

t.test('arrive refuses a Via loop at maxHops (PROXY_LOOP, 400), one hop below passes', async (t) => {
  const { s } = stage({ maxHops: 3 });
  const ctx: RequestContext = {};
  t.equal(
    codeOf(() => s.arrive(head('/', { via: '1.1 a, 1.1 b' }), ctx)),
    'ok',
    'two hops of three',
  );
  let thrown: unknown;
  try {
    s.arrive(head('/', { via: ['1.1 a, 1.1 b', '1.1 c'] }), ctx);
  } catch (err) {
    thrown = err;
  }
  t.ok(thrown instanceof HostmeshError);
  const e = thrown as HostmeshError;
  t.equal(e.code, 'PROXY_LOOP', 'three hops over two Via fields reach maxHops 3');
  t.equal(e.status, 400);
  t.equal(e.message, 'proxy loop: more than 3 hops in Via');
  t.equal(
    codeOf(() => s.arrive(head('/', { via: ' , ,1.1 a' }), ctx)),
    'ok',
    'empty Via entries are not hops',
  );
});

t.test('arrive refuses a deadline already past on the injected clock, before any naming', async (t) => {
  let now = T0;
  const { s, timeouts } = stage({ now: () => now });
  const past = formatDeadline({ timestamp: T0 - 5_000, deadline: T0 - 1 });
  const ctx: RequestContext = {};
  let thrown: unknown;
  try {
    // An unnamable request (no Host): the deadline is refused first, so no NO_HOST.
    s.arrive({ method: 'GET', url: '/', headers: { 'l5d-ctx-deadline': past }, httpVersion: '1.1' }, ctx);
  } catch (err) {
    thrown = err;
  }
  t.ok(thrown instanceof HostmeshError);
  t.equal((thrown as HostmeshError).code, 'TIMEOUT');
  t.equal((thrown as HostmeshError).status, 503);
  t.match((thrown as HostmeshError).message, /l5d-ctx-deadline\) passed 1 ms ago: not forwarded/);
  t.same(timeouts, ['deadline_passed'], 'counted as deadline_passed');
  t.equal(ctx.deadline, undefined, 'the context holds no deadline of a refused request');

  // A deadline exactly now is past too (nothing can be forwarded in zero time).
  const atNow = formatDeadline({ timestamp: T0 - 5, deadline: T0 });
  t.equal(
    codeOf(() => s.arrive(head('/', { 'l5d-ctx-deadline': atNow }), {})),
    'TIMEOUT',
  );

  // The same header is fine while the clock is before it, and the context carries it.
  const later = formatDeadline({ timestamp: T0, deadline: T0 + 1_000 });
  now = T0 + 999;
  const ok: RequestContext = {};
  const a = s.arrive(head('/', { 'l5d-ctx-deadline': later }), ok);
  t.equal(a.deadline?.at, T0 + 1_000);
  t.equal(a.deadline?.source, 'header');
  t.equal(ok.deadline, a.deadline, 'the deadline is put in the context for the rescue point and forward');
  now = T0 + 1_000;
  t.equal(
    codeOf(() => s.arrive(head('/', { 'l5d-ctx-deadline': later }), {})),
    'TIMEOUT',
    'one ms later it has passed',
  );
  t.same(timeouts, ['deadline_passed', 'deadline_passed', 'deadline_passed']);
});

t.test("arrive takes the earlier of the caller's deadline and totalTimeoutMs", async (t) => {
  const { s } = stage({ totalTimeoutMs: 500 });
  const a = s.arrive(head('/'), {});
  t.same(a.deadline, { at: T0 + 500, source: 'total', wire: { timestamp: T0, deadline: T0 + 500 } });
  const sooner = formatDeadline({ timestamp: T0, deadline: T0 + 100 });
  t.equal(s.arrive(head('/', { 'l5d-ctx-deadline': sooner }), {}).deadline?.source, 'header');
  const later = formatDeadline({ timestamp: T0, deadline: T0 + 10_000 });
  t.equal(s.arrive(head('/', { 'l5d-ctx-deadline': later }), {}).deadline?.at, T0 + 500);
  t.equal(stage().s.arrive(head('/'), {}).deadline, undefined, 'neither: unbounded');
});

t.test('arrive normalizes absolute-form to origin-form with the URI authority as Host', async (t) => {
  const { s } = stage();
  const a = shown(s.arrive(head('http://World:80/x/y?z=1', { host: 'ignored' }, 'POST'), {}));
  t.same(a, { method: 'POST', host: 'world', target: '/x/y?z=1', deadline: undefined });
  t.same(shown(s.arrive(head('http://api:8080'), {})), { method: 'GET', host: 'api:8080', target: '/', deadline: undefined });
  t.same(shown(s.arrive({ url: '/p', headers: { host: 'Web' }, httpVersion: '1.1' }, {})), { method: 'GET', host: 'web', target: '/p', deadline: undefined });
  t.equal(
    codeOf(() => s.arrive(head('https://world/'), {})),
    'BAD_REQUEST',
    'only http:// is proxied',
  );
  t.equal(
    codeOf(() => s.arrive(head('http://u@world/'), {})),
    'BAD_REQUEST',
    'userinfo refused',
  );
  t.equal(
    codeOf(() => s.arrive(head('/', { host: 'bad host' }), {})),
    'BAD_REQUEST',
  );
});

t.test('name goes through the identifiers in turn and records the service in the context', async (t) => {
  const { s } = stage({
    identifiers: [
      { kind: 'io.l5d.header', header: 'l5d-name' },
      { kind: 'io.l5d.path', segments: 2, consume: true },
      { kind: 'io.l5d.header.token', header: 'Host' },
    ],
  });
  const named = (req: RequestHead): { service: string; target: string; ctx: string | undefined } => {
    const ctx: RequestContext = {};
    const id = s.name(req, s.arrive(req, ctx), ctx);
    return { service: id.service.show(), target: id.target, ctx: ctx.service };
  };
  t.same(named(head('/a/b/c?d', { 'l5d-name': '/x/y' })), { service: '/svc/x/y', target: '/a/b/c?d', ctx: '/svc/x/y' }, 'header first');
  t.same(named(head('/a/b/c?d')), { service: '/svc/a/b', target: '/c?d', ctx: '/svc/a/b' }, 'then the path, consumed');
  t.same(named(head('http://Web/only')), { service: '/svc/web', target: '/only', ctx: '/svc/web' }, 'then the Host of the absolute form');
  t.same(
    named(head('/a/b', { 'l5d-name': 'not a path' })),
    { service: '/svc/a/b', target: '/', ctx: '/svc/a/b' },
    'a bad l5d-name falls through to the next identifier',
  );

  const ctx: RequestContext = {};
  const req = { method: 'GET', url: '/one', headers: {}, httpVersion: '1.1' };
  t.equal(
    codeOf(() => s.name(req, s.arrive(req, ctx), ctx)),
    'NO_HOST',
    'nobody names it, and it has no Host',
  );
  t.equal(ctx.service, undefined);
});

t.test('io.l5d.methodAndHost names by version and method; nameOfHost names a bare Host', async (t) => {
  const { s } = stage({ identifiers: [{ kind: 'io.l5d.methodAndHost', httpUriInDst: true }] });
  const req = head('/a/b', {}, 'PUT');
  t.equal(s.name(req, s.arrive(req, {}), {}).service.show(), '/svc/1.1/PUT/world/a/b');
  const old = head('/a', {}, 'GET', '1.0');
  t.equal(s.name(old, s.arrive(old, {}), {}).service.show(), '/svc/1.0/GET/a');
  t.equal(stage().s.nameOfHost('world').show(), '/svc/world', "CONNECT's check names world as a request with Host world");
});
