// One router's config for tests that start hostmesh in-process: a plaintext server on `ip:port`,
// the Host identifier, p2c, no transformers; `extra` overrides any of it.

import type { RouterConfig } from '../../src/config/types.js';

export function testRouter(label: string, ip: string, port: number, dtab: string, extra: Partial<RouterConfig> = {}): RouterConfig {
  return {
    protocol: 'http',
    label,
    dtab,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    transformers: [],
    servers: [{ ip, port }],
    client: { loadBalancer: { kind: 'p2c' } },
    maxHops: 64,
    ...extra,
  };
}
