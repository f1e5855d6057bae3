import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runDelegate } from '../../src/cli/delegate.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

t.test('--json prints path, Linkerd 1 shaped tree and the bound result', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'delegate-'));
  await writeFile(join(dir, 'world'), '127.0.0.1 8080 node=n1\n');
  const c = capture();
  const code = await runDelegate({ path: '/svc/world', dtab: '/svc => /#/io.l5d.fs', fsRoot: dir, json: true }, c.io);
  t.equal(code, 0);
  const json = JSON.parse(c.out.join('\n')) as { path: string; bound: string; tree: Record<string, unknown> };
  t.equal(json.path, '/svc/world');
  t.equal(json.bound, '/#/io.l5d.fs/world');
  t.match(json.tree, {
    type: 'delegate',
    delegate: {
      type: 'leaf',
      dentry: { prefix: '/svc', dst: '/#/io.l5d.fs' },
      bound: { addr: { addrs: [{ ip: '127.0.0.1', port: 8080, meta: { nodeName: 'n1' } }] } },
    },
  });
});

t.test('text output shows each step and the result; neg is a completed delegation', async (t) => {
  const c = capture();
  t.equal(await runDelegate({ path: '/svc/x', dtab: '/svc => /$/inet/127.0.0.1/9' }, c.io), 0);
  t.match(c.out.join('\n'), /\/svc\/x\n {2}\/\$\/inet\/127.0.0.1\/9\/x {2}\(\/svc=>\/\$\/inet\/127.0.0.1\/9\)/);
  t.match(c.out.join('\n'), /bound: \/\$\/inet\/127.0.0.1\/9\/x/);
  const n = capture();
  t.equal(await runDelegate({ path: '/nothing', dtab: '/svc => /x' }, n.io), 0);
  t.match(n.out.join('\n'), /bound: ~/);
});

t.test('parse errors and loops exit 1, bad usage exits 2', async (t) => {
  const p = capture();
  t.equal(await runDelegate({ path: '/svc', dtab: '/svc => (' }, p.io), 1);
  t.match(p.err[0], /expected but end of input found/);
  t.equal(await runDelegate({ path: 'svc', dtab: '' }, capture().io), 1);
  t.equal(await runDelegate({ path: '/a', dtab: '/a=>/b;/b=>/a' }, capture().io), 1);
  t.equal(await runDelegate({ path: '/a', dtab: '/a=>/b', dtabFile: 'x' }, capture().io), 2);
  t.equal(await runDelegate({ path: '/a', dtabFile: '/nonexistent/x.dtab' }, capture().io), 2);
});
