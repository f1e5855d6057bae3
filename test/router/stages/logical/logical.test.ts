// The logical stage alone (stages/logical/logical.ts), with a real NameInterpreter over /$/inet and a test
// namer, driven by dtab strings: override order, the binding cache's caps and idle eviction, budgets.

import fc from 'fast-check';
import t from 'tap';
import { Dtab } from '../../../../src/dtab/dtab.js';
import { Path } from '../../../../src/dtab/path.js';
import { parsePath } from '../../../../src/dtab/parse.js';
import { HostmeshError } from '../../../../src/errors.js';
import type { Addr, BoundName, Lookup, Namer } from '../../../../src/namer/addr.js';
import { showBound } from '../../../../src/namer/delegate-tree.js';
import { NameInterpreter } from '../../../../src/namer/interpreter.js';
import { Var } from '../../../../src/namer/var.js';
import type { RequestContext } from '../../../../src/router/context.js';
import { type BindingCacheLimits, DEFAULT_BINDING_CACHE, LogicalStage } from '../../../../src/router/stages/logical/logical.js';

const inet = (port: number): string => `/$/inet/127.0.0.1/${port}`;

/** A namer at /#/flaky whose names fail while `down` is set, and bind to 127.0.0.9:<n> otherwise. */
class FlakyNamer implements Namer {
  readonly kind = 'flaky';
  readonly prefix = Path.of('flaky');
  down = true;
  lookups = 0;
  lookup(path: Path): Var<Lookup> {
    this.lookups++;
    // A fresh Var per lookup: a binding kept from a failure would stay failed.
    if (this.down) return new Var<Lookup>({ kind: 'failed', error: new Error('flaky namer is down') });
    const name = path.elems[0] ?? '';
    const addr = new Var<Addr>({ kind: 'bound', endpoints: [{ host: '127.0.0.9', port: Number(name) || 1, meta: {} }] });
    const bound: BoundName = { id: new Path(['#', 'flaky', name]), residual: path.drop(1), addr };
    return new Var<Lookup>({ kind: 'ok', tree: { kind: 'leaf', value: bound } });
  }
}

interface Harness {
  stage: LogicalStage;
  dtab: Var<Dtab>;
  interpreter: NameInterpreter;
  flaky: FlakyNamer;
  evicted: string[];
  overBudget: string[];
  clock: { now: number };
}

function harness(dtab: string, limits: Partial<BindingCacheLimits> = {}, budget?: number): Harness {
  const flaky = new FlakyNamer();
  const interpreter = new NameInterpreter({ namers: [flaky] });
  const d = new Var(Dtab.read(dtab));
  const clock = { now: 1_000 };
  const evicted: string[] = [];
  const overBudget: string[] = [];
  const stage = new LogicalStage({
    dtab: d,
    interpreter,
    limits: { ...DEFAULT_BINDING_CACHE, ...limits },
    now: () => clock.now,
    budget,
    events: { bindingEvicted: (r) => evicted.push(r), budgetExceeded: (s) => overBudget.push(s) },
  });
  return { stage, dtab: d, interpreter, flaky, evicted, overBudget, clock };
}

/** The bound tree of `service` as text, or the catalog code it failed with. */
async function bound(h: Harness, service: string, headers: Record<string, string> = {}, ctx: RequestContext = {}): Promise<string> {
  try {
    const b = await h.stage.bind(headers, parsePath(service), ctx);
    return showBound(b.tree);
  } catch (err) {
    return err instanceof HostmeshError ? `${err.code} (${err.status})` : `not a HostmeshError: ${String(err)}`;
  }
}

t.test("binds through the router's dtab; l5d-ctx-dtab then l5d-dtab are laid over it, the later winning", async (t) => {
  const h = harness(`/svc=>${inet(1)}`);
  t.teardown(() => h.stage.close());
  t.equal(await bound(h, '/svc/x'), `${inet(1)}/x`, 'the residual follows the bound id');
  const ctx: RequestContext = {};
  t.equal(await bound(h, '/svc', { 'l5d-ctx-dtab': `/svc=>${inet(2)}` }, ctx), inet(2), 'the ctx override beats the base');
  t.equal(ctx.dtab, `/svc=>${inet(1)}`, 'the context names the base dtab');
  t.equal(ctx.overrides, `/svc=>${inet(2)}`);
  const both: RequestContext = {};
  const headers = { 'l5d-ctx-dtab': `/svc=>${inet(2)}`, 'l5d-dtab': `/svc=>${inet(3)}` };
  t.equal(await bound(h, '/svc', headers, both), inet(3), 'l5d-dtab (this hop) beats l5d-ctx-dtab (from upstream)');
  const b = await h.stage.bind(headers, parsePath('/svc'), {});
  t.equal(b.overrides, `/svc=>${inet(2)};/svc=>${inet(3)}`, 'forwarded downstream in order: ctx first, then local');
  t.equal((await h.stage.bind({}, parsePath('/svc'), {})).overrides, '', 'no override: nothing to forward');
  t.equal(await bound(h, '/svc', { 'l5d-dtab': `/other=>${inet(4)}` }), inet(1), 'an override of another prefix changes nothing');
  t.equal(await bound(h, '/svc', { 'l5d-dtab': '/svc=>' }), 'BAD_DTAB_HEADER (400)', 'an override that does not parse is the client’s 400');
  t.equal(await bound(h, '/nothing'), '~', 'a name no dentry matches binds to neg (the concrete stage refuses it)');

  const size = h.stage.size;
  h.dtab.set(Dtab.read(`/svc=>${inet(5)}`));
  t.equal(await bound(h, '/svc'), inet(5), 'a reloaded dtab applies to the next request');
  t.equal(h.stage.size, size, "the earlier dtab's binding of /svc was replaced, not kept beside it");
  h.dtab.set(Dtab.read(`/svc=>${inet(5)}`));
  t.equal(await bound(h, '/svc'), inet(5), 'the same text reloaded binds the same');
  h.dtab.set(Dtab.read(`/svc=>${inet(1)}`));
  t.equal(await bound(h, '/svc'), inet(1), 'and back');
});

t.test('the cache keeps at most `paths` base bindings; a binding used since it last came up stays', async (t) => {
  const h = harness(`/svc=>/$/inet/127.0.0.1`, { paths: 2, overrides: 1 });
  t.teardown(() => h.stage.close());
  await bound(h, '/svc/1');
  await bound(h, '/svc/2');
  await bound(h, '/svc/1'); // a hit: 2 is now the least recently used
  await bound(h, '/svc/3');
  t.equal(h.stage.size, 2);
  t.same([...h.stage.boundNames().keys()].sort(), [inet(1), inet(3)], '/svc/2 went, the recently used /svc/1 stayed');
  t.same(h.evicted, ['capacity']);

  // Overrides have their own, smaller cap, and never push out base bindings.
  for (let port = 10; port < 15; port++) await bound(h, '/svc/1', { 'l5d-dtab': `/svc=>${inet(port)}` });
  t.equal(h.stage.size, 3, 'two base bindings and one override binding');
  t.same(h.evicted.length, 5, 'four more capacity evictions, all among the overrides');
  t.ok(h.stage.boundNames().has(inet(3)), 'base bindings untouched by override churn');
  t.ok(h.stage.boundNames().has(`${inet(14)}`), 'the newest override binding is the one kept');
});

t.test('with every cached binding in use, a new name is bound and kept; an older one goes', async (t) => {
  const h = harness(`/svc=>/$/inet/127.0.0.1`, { paths: 2 });
  t.teardown(() => h.stage.close());
  for (const p of ['/svc/1', '/svc/2', '/svc/1', '/svc/2']) await bound(h, p);
  t.equal(await bound(h, '/svc/3'), inet(3));
  t.ok(h.stage.boundNames().has(inet(3)), 'the new binding is cached, not closed under its request');
  t.equal(h.stage.size, 2);
  t.same(h.evicted, ['capacity'], 'one of the two used ones went');
});

t.test('idle bindings are evicted on the injected clock; a hit keeps one alive', async (t) => {
  const h = harness(`/svc=>/$/inet/127.0.0.1`, { idleTtlMs: 1_000 });
  t.teardown(() => h.stage.close());
  await bound(h, '/svc/1');
  await bound(h, '/svc/2');
  await bound(h, '/svc/3', { 'l5d-dtab': `/svc=>${inet(9)}` });
  h.clock.now += 600;
  await bound(h, '/svc/2'); // used again: its idle time restarts
  h.clock.now += 400;
  t.equal(h.stage.evictIdle(), 2, '/svc/1 and the override binding idle for 1 s');
  t.same([...h.stage.boundNames().keys()], [inet(2)]);
  t.same(h.evicted, ['idle', 'idle']);
  h.clock.now += 599;
  t.equal(h.stage.evictIdle(), 0, 'idle 999 ms: kept');
  h.clock.now += 1;
  t.equal(h.stage.evictIdle(), 1);
  t.equal(h.stage.size, 0);
});

t.test('a failed binding is not cached: the next request binds afresh and succeeds once the namer recovers', async (t) => {
  const h = harness('/svc=>/#/flaky');
  t.teardown(() => h.stage.close());
  let thrown: unknown;
  try {
    await h.stage.bind({}, parsePath('/svc/7'), {});
  } catch (err) {
    thrown = err;
  }
  t.ok(thrown instanceof HostmeshError);
  t.equal((thrown as HostmeshError).code, 'BINDING_FAILED');
  t.equal((thrown as HostmeshError).status, 502);
  t.match((thrown as HostmeshError).message, /flaky namer is down/);
  t.equal(h.stage.size, 0, 'nothing cached');
  h.flaky.down = false;
  t.equal(await bound(h, '/svc/7'), '/#/flaky/7', 'the recovered namer is asked again');
  t.equal(h.flaky.lookups, 2);
  t.equal(h.stage.size, 1, 'a success is cached');
  t.equal(await bound(h, '/svc/7'), '/#/flaky/7');
  t.equal(h.flaky.lookups, 2, 'and served from the cache');
});

/** `/h0 => /h1 & /h1; ... /h<n> => leaf`: a tree of 2^n leaves. */
function doubling(levels: number): string {
  const lines: string[] = [];
  for (let i = 0; i < levels; i++) lines.push(`/h${i}=>/h${i + 1}&/h${i + 1}`);
  lines.push(`/h${levels}=>${inet(1)}`);
  return lines.join(';');
}

t.test("over the budget: the router's own dtab is BINDING_OVER_BUDGET (502), an override's is OVERRIDE_OVER_BUDGET (400)", async (t) => {
  const own = harness(`${doubling(8)};/svc=>/h0`, {}, 50);
  t.teardown(() => own.stage.close());
  t.equal(await bound(own, '/svc'), 'BINDING_OVER_BUDGET (502)', 'the operator’s dtab: a 502');
  t.same(own.overBudget, ['dtab']);
  t.equal(own.stage.size, 0, 'not cached');

  const h = harness(`/svc=>${inet(1)}`, {}, 50);
  t.teardown(() => h.stage.close());
  t.equal(await bound(h, '/svc', { 'l5d-dtab': `${doubling(8)};/svc=>/h0` }), 'OVERRIDE_OVER_BUDGET (400)', 'the client’s override: a 400');
  t.same(h.overBudget, ['override']);
  t.equal(h.stage.size, 0, 'not cached');
  t.match(await bound(h, '/svc', { 'l5d-dtab': `${doubling(3)};/svc=>/h0` }), /^[^A-Z]*\/\$\/inet\/127\.0\.0\.1\/1/, 'a small override still binds');
  t.equal(await bound(h, '/svc'), inet(1), 'and the base is unaffected');
});

/** A small dtab over a few prefixes, leaves among /$/inet names, other prefixes, neg, fail and empty. */
const leaf = fc.constantFrom(inet(1), inet(2), `${inet(3)}/r`, '/a', '/b', '/b/x', '/svc/a', '~', '!', '$');
const tree = fc.oneof(
  leaf,
  fc.tuple(leaf, leaf).map(([x, y]) => `${x}|${y}`),
  fc.tuple(leaf, leaf, fc.integer({ min: 1, max: 3 })).map(([x, y, w]) => `${w}*${x}&${y}`),
);
const dentry = fc.tuple(fc.constantFrom('/svc', '/svc/a', '/a', '/b'), tree).map(([p, tr]) => `${p}=>${tr}`);
const dtabText = fc.array(dentry, { minLength: 0, maxLength: 4 }).map((ds) => ds.join(';'));

/** What the interpreter itself binds `service` to through `dtab`, as text (or the error code). */
function interpreterBinds(interpreter: NameInterpreter, dtab: Dtab, service: string): string {
  const b = interpreter.bind(dtab, parsePath(service));
  const s = b.state.get();
  b.close();
  return s.kind === 'ok' ? showBound(s.tree) : `error ${s.kind === 'failed' && s.error instanceof HostmeshError ? s.error.code : 'BINDING_FAILED'}`;
}

t.test('property: the stage binds exactly what the interpreter binds through base.concat(override)', async (t) => {
  const interpreter = new NameInterpreter({ namers: [] });
  const seen = { inet: 0, overridden: 0 };
  await fc.assert(
    fc.asyncProperty(dtabText, dtabText, dtabText, fc.constantFrom('/svc/a', '/svc/a/z', '/svc/b', '/a'), async (base, ctxDtab, local, service) => {
      const d = new Var(Dtab.read(base));
      const stage = new LogicalStage({ dtab: d, interpreter, limits: DEFAULT_BINDING_CACHE, now: () => 0 });
      try {
        const headers: Record<string, string> = {};
        if (ctxDtab !== '') headers['l5d-ctx-dtab'] = ctxDtab;
        if (local !== '') headers['l5d-dtab'] = local;
        const override = Dtab.read(ctxDtab).concat(Dtab.read(local));
        const bound = interpreterBinds(interpreter, Dtab.read(base).concat(override), service);
        // Over budget with an override in play is the client's fault: the stage says so (400).
        const want = bound === 'error BINDING_OVER_BUDGET' && override.dentries.length > 0 ? 'error OVERRIDE_OVER_BUDGET' : bound;
        const got = async (): Promise<string> => {
          try {
            return showBound((await stage.bind(headers, parsePath(service), {})).tree);
          } catch (err) {
            return `error ${(err as HostmeshError).code}`;
          }
        };
        const first = await got();
        const cached = await got();
        if (want.includes('/$/inet')) seen.inet++;
        if (want !== interpreterBinds(interpreter, Dtab.read(base), service)) seen.overridden++;
        return first === want && cached === want;
      } finally {
        stage.close();
      }
    }),
    { numRuns: 300 },
  );
  t.pass('300 random (base, l5d-ctx-dtab, l5d-dtab, name) cases agree, cached and fresh');
  t.ok(seen.inet > 30 && seen.overridden > 30, `the cases are not vacuous: ${seen.inet} bind an address, ${seen.overridden} differ from the base alone`);
});

t.test('a name still pending after bindingTimeoutMs is a 503 TIMEOUT naming the wait, and it is not cached', async (t) => {
  // A namer that never answers: its lookups stay pending.
  const silent: Namer = { kind: 'silent', prefix: Path.of('silent'), lookup: () => new Var<Lookup>({ kind: 'pending' }) };
  const stage = new LogicalStage({
    dtab: new Var(Dtab.read('/svc=>/#/silent')),
    interpreter: new NameInterpreter({ namers: [silent] }),
    limits: DEFAULT_BINDING_CACHE,
    now: () => 0,
    waitMs: 50,
  });
  t.teardown(() => stage.close());
  const started = performance.now();
  const err = await Promise.resolve()
    .then(() => stage.bind({}, parsePath('/svc/x'), {}))
    .catch((e: unknown) => e);
  t.type(err, HostmeshError);
  t.equal((err as HostmeshError).code, 'TIMEOUT');
  t.equal((err as HostmeshError).status, 503);
  t.match((err as HostmeshError).message, /did not resolve within 50 ms \(bindingTimeoutMs\)/);
  t.ok(performance.now() - started < 5000, 'answered after the configured wait, not the 10 s default');
  t.equal(stage.size, 0, 'the pending binding is not kept for the next request');
});
