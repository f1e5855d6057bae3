// The authorization policy file: parses and validates the YAML (errors as file:line:col with the key
// path, never the offending value) into a PolicyFile; policy.ts compiles and evaluates it.

import type { z } from 'zod';
import { showPath, YamlFile } from '../fs/yaml-positions.js';
import { policySchema, type PolicyFile } from './policy-schema.js';
import { PolicyError } from './policy-error.js';

export { PolicyError } from './policy-error.js';

type Key = string | number;

/** Problems from zod, positioned; messages name types and keys, never the offending value. */
function zodProblems(pos: YamlFile, issues: readonly z.core.$ZodIssue[]): string[] {
  // A misspelt key explains the "missing" error of the key it was meant to be: report it first.
  const ordered = [...issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
  return ordered.map((issue) => {
    const path = issue.path.filter((k): k is Key => typeof k !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0] as string;
      const what = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      return `${pos.at(path, key)}: ${showPath([...path, key])}: ${what}`;
    }
    if (issue.code === 'invalid_key') {
      return `${pos.at(path)}: ${showPath(path)}: the key is not a namespace name or glob`;
    }
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
      return `${pos.at(path)}: ${showPath(path)}: required key missing`;
    }
    return `${pos.at(path)}: ${showPath(path)}: ${issue.message}`;
  });
}

/** Parses and validates policy text; throws PolicyError (and nothing else) when it is not valid. */
export function parsePolicyFile(text: string, file: string): PolicyFile {
  const pos = new YamlFile(file, text);
  const syntax = pos.syntaxErrors();
  if (syntax.length > 0) throw new PolicyError(syntax);
  let raw: unknown;
  try {
    // toJS enforces yaml's alias budget (maxAliasCount), so a billion-laughs file fails here.
    raw = pos.doc.toJS();
  } catch (err) {
    throw new PolicyError([`${file}:1:1: ${err instanceof Error ? err.message.split('\n')[0] : 'cannot read the document'}`]);
  }
  if (raw === null || raw === undefined) {
    // An emptied ConfigMap must not become "no policy, allow everything".
    throw new PolicyError([`${file}:1:1: the policy is empty (an empty policy is written 'namespaces: {}' and 'rules: []')`]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError([`${file}:1:1: the policy must be a YAML mapping`]);
  const result = policySchema.safeParse(raw);
  if (!result.success) throw new PolicyError(zodProblems(pos, result.error.issues));
  return result.data;
}
