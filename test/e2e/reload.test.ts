// dtabFile hot reload as Kubernetes does it: the ConfigMap mount's `..data` symlink is swapped to
// a new directory while requests flow. A valid new dtab applies with zero failed requests; a bad
// one is rejected (file:line:col, counted) and the old one stays in force.

import http from 'node:http';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startHostmesh } from '../../src/app/hostmesh.js';
import { freePorts } from '../helpers/ports.js';
import { request } from '../helpers/http.js';

const HOST = '127.0.0.1';

async function backend(body: string): Promise<{ port: number; close: () => void }> {
  const s = http.createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => s.listen(0, HOST, r));
  return { port: (s.address() as { port: number }).port, close: () => s.close() };
}

/** Writes a new `..data` generation holding `files` and swaps the symlink atomically. */
async function publish(mount: string, generation: string, files: Record<string, string>): Promise<void> {
  const dir = join(mount, `..${generation}`);
  await mkdir(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  await symlink(`..${generation}`, join(mount, '..data_tmp'));
  await rename(join(mount, '..data_tmp'), join(mount, '..data'));
}

t.test('swapping the mounted dtab while requests flow', async (t) => {
  const v1 = await backend('v1');
  const v2 = await backend('v2');
  t.teardown(() => {
    v1.close();
    v2.close();
  });
  const root = await mkdtemp(join(tmpdir(), 'hostmesh-reload-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const mount = join(root, 'config');
  await mkdir(mount);
  await publish(mount, 'gen1', { 'outgoing.dtab': `/svc/app => /$/inet/${HOST}/${v1.port};\n` });
  await symlink('..data/outgoing.dtab', join(mount, 'outgoing.dtab'));
  const [out, admin] = (await freePorts(HOST, 2)) as [number, number];
  await writeFile(
    join(mount, '..data', 'config.yaml'),
    `admin: {ip: ${HOST}, port: ${admin}}\nrouters:\n- protocol: http\n  label: outgoing\n  dtabFile: outgoing.dtab\n  servers: [{ip: ${HOST}, port: ${out}}]\n`,
  );
  await symlink('..data/config.yaml', join(mount, 'config.yaml'));
  const { config } = await loadConfig(join(mount, 'config.yaml'));
  const rejects: string[] = [];
  const mesh = await startHostmesh(config, { logger: silentLogger(), dtabPollMs: 200, onDtabReject: (_r, m) => rejects.push(m) });
  t.teardown(() => mesh.close(0));

  // A steady stream of requests, counted by answer.
  const answers = new Map<string, number>();
  let failures = 0;
  let running = true;
  const flow = (async () => {
    while (running) {
      const r = await request({ host: HOST, port: out, path: 'http://app/' }).catch(() => ({ status: 0, body: 'error' }));
      if (r.status !== 200) failures++;
      answers.set(r.body, (answers.get(r.body) ?? 0) + 1);
    }
  })();
  const waitFor = async (what: () => boolean, ms = 5000): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return what();
  };
  t.ok(await waitFor(() => (answers.get('v1') ?? 0) > 20), 'traffic flows to v1');

  await publish(mount, 'gen2', { 'outgoing.dtab': `/svc/app => /$/inet/${HOST}/${v2.port};\n`, 'config.yaml': 'unused' });
  t.ok(await waitFor(() => (answers.get('v2') ?? 0) > 20), 'after the swap, new requests go to v2');
  const v2Before = answers.get('v2') ?? 0;

  await publish(mount, 'gen3', { 'outgoing.dtab': `/svc/app => /$/inet/${HOST}/${v1.port};\n/svc => /a b;\n` });
  t.ok(await waitFor(() => rejects.length > 0), 'the bad version is rejected');
  t.match(rejects[0], /outgoing\.dtab:2:\d+: /, 'with file:line:col');
  t.ok(await waitFor(() => (answers.get('v2') ?? 0) > v2Before + 20), 'v2 (the old dtab) stays in force');
  t.equal(mesh.dtabWatchers.get('outgoing')?.rejected, 1, 'counted once');

  running = false;
  await flow;
  t.equal(failures, 0, `zero failed requests across both swaps (${[...answers].map(([k, v]) => `${k}: ${v}`).join(', ')})`);
  t.equal(answers.get('v1') !== undefined && answers.get('v2') !== undefined, true);
});
