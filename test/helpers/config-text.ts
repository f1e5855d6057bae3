// Config texts for loader tests: a one-router YAML with extra router lines, and the problems
// parseConfig reports for a text (empty when it loads).

import { ConfigError, parseConfig } from '../../src/config/load.js';

export function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'c.yaml', { env: { NODE_NAME: 'n1' } });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

/** A one-router config with `extra` YAML lines inside the router (indented by 2). */
export function router(extra: string): string {
  return ['routers:', '- protocol: http', '  servers: [{port: 4140}]', ...extra.split('\n').map((l) => `  ${l}`)].join('\n') + '\n';
}
