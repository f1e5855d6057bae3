// Ties the error catalog to docs/errors.md: every code the router can answer with is documented
// with its status and retry flag, and the docs name no code the catalog lacks.

import { readFileSync } from 'node:fs';
import t from 'tap';
import { ERRORS } from '../src/errors.js';
import { repoPath } from './helpers/paths.js';

const doc = readFileSync(repoPath('docs', 'errors.md'), 'utf8');
const sections = new Map<string, string>();
for (const part of doc.split(/^## /m).slice(1)) {
  const [title = '', ...body] = part.split('\n');
  sections.set(title.trim(), body.join('\n'));
}

t.test('every catalog code has a section in docs/errors.md with its status and retry flag', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    const text = sections.get(code);
    if (text === undefined) {
      t.fail(`${code} is not documented in docs/errors.md`);
      continue;
    }
    const head = text.trim().split('.')[0] ?? '';
    t.match(head, new RegExp(`^${spec.status}, ${spec.retryable ? 'retryable' : 'not retryable'}$`), `${code}: status and retry flag`);
  }
});

t.test('docs/errors.md documents no code the catalog lacks', async (t) => {
  const codes = new Set(Object.keys(ERRORS));
  t.same(
    [...sections.keys()].filter((s) => !codes.has(s)),
    [],
    'no stale sections',
  );
});
