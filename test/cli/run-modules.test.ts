// What `hostmesh run` keeps loaded on the router's thread (docs/memory.md): not undici's index
// (fetch, WebSocket, caches), not zod or the YAML parser (the config and the policy are validated
// in workers), not node-forge (the CSR is written with node:crypto), not undici's Client, Pool or
// Agent (src/core/undici.ts loads them on first use: ~1 MB). Each of these held 1-5 MB of
// heap for the life of every router; an import added on a runtime path brings one back, and this
// fails.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { imageNodeFlags } from '../helpers/image-flags.js';
import { freePorts } from '../helpers/ports.js';
import { COMPILED, ROOT } from '../helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'hostmesh-modules-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a started router has not loaded undici index, zod, yaml or node-forge on its thread', async (t) => {
  const [port, admin] = (await freePorts('127.0.0.1', 2)) as [number, number];
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `admin: {ip: 127.0.0.1, port: ${admin}}`,
      `authz: {policyFile: ${join(ROOT, 'k8s', 'base', 'config', 'policy.yaml')}}`,
      'routers:',
      '- protocol: http',
      '  label: outgoing',
      '  dtab: /svc/world => /$/inet/127.0.0.1/9;',
      `  servers: [{ip: 127.0.0.1, port: ${port}}]`,
      '',
    ].join('\n'),
  );
  const main = COMPILED ? join(ROOT, 'dist', 'src', 'cli', 'main.js') : join(ROOT, 'src', 'cli', 'main.ts');
  // The router starts in this child; once `run` has started it, the child reports what it loaded.
  const probe = join(dir, 'probe.mjs');
  writeFileSync(
    probe,
    [
      "import { createRequire } from 'node:module';",
      `process.argv = [process.argv[0], 'hostmesh', 'run', '-c', ${JSON.stringify(config)}];`,
      `await import(${JSON.stringify(pathToFileURL(main).href)});`,
      'const cache = Object.keys(createRequire(import.meta.url).cache);',
      'process.stdout.write(JSON.stringify({ zod: globalThis.__zod_globalConfig !== undefined, cache }));',
      'process.exit(0);',
    ].join('\n'),
  );
  const loader = process.execArgv.filter((a) => a.startsWith('--import') && a.includes('typescript'));
  // Started as the image starts it: with its entry point's node flags (the heap flags reach the
  // config and policy workers' isolates too).
  const r = spawnSync(process.execPath, [...imageNodeFlags(), ...loader, probe], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.stderr);
  const { zod, cache } = JSON.parse(r.stdout) as { zod: boolean; cache: string[] };
  t.ok(
    cache.some((f) => f.includes(`${join('node_modules', 'undici', 'lib', 'dispatcher', 'dispatcher.js')}`)),
    "the probe sees CommonJS modules (undici's dispatcher base class, which the lean pool extends, is loaded)",
  );
  t.same(
    cache.filter((f) => /undici[\\/]lib[\\/]dispatcher[\\/](client|pool|agent)\.js$/.test(f)),
    [],
    "undici's Client, Pool and Agent (loaded on first use; a router on the lean engine never uses them)",
  );
  t.same(
    cache.filter((f) => f.endsWith(join('node_modules', 'undici', 'index.js'))),
    [],
    'undici index (fetch, WebSocket, caches)',
  );
  t.same(
    cache.filter((f) => f.includes(join('node_modules', 'node-forge'))),
    [],
    'node-forge',
  );
  t.same(
    cache.filter((f) => f.includes(join('node_modules', 'yaml'))),
    [],
    'yaml',
  );
  t.notOk(zod, 'zod');
});
