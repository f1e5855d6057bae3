// A server's maxPipelinedRequests: it loads, unset it stays unset (the default applies), and a
// value under 1 or fractional is refused naming the key.

import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { DEFAULT_MAX_PIPELINED_REQUESTS } from '../../src/server/pipeline.js';

function config(server: string): string {
  return `routers:
- protocol: http
  dtab: /svc => /$/inet/127.0.0.1/1;
  servers:
  - port: 4140
${server}`;
}

t.test('the key loads into the server config; unset, the default applies', async (t) => {
  t.equal(parseConfig(config('    maxPipelinedRequests: 8\n'), 'l5d.yaml').config.routers[0]?.servers[0]?.maxPipelinedRequests, 8);
  t.equal(parseConfig(config(''), 'l5d.yaml').config.routers[0]?.servers[0]?.maxPipelinedRequests, undefined);
  t.equal(DEFAULT_MAX_PIPELINED_REQUESTS, 32, 'the README limits table says 32');
});

for (const value of ['0', '1.5', '1000000', 'many']) {
  t.test(`refused: maxPipelinedRequests ${value}`, async (t) => {
    t.throws(() => parseConfig(config(`    maxPipelinedRequests: ${value}\n`), 'l5d.yaml'), ConfigError);
    try {
      parseConfig(config(`    maxPipelinedRequests: ${value}\n`), 'l5d.yaml');
    } catch (err) {
      t.match((err as Error).message, /l5d\.yaml:6:\d+: .*maxPipelinedRequests/);
    }
  });
}
