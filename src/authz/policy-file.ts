// The authorization policy file: parses and validates the YAML (errors as file:line:col with the key
// path, never the offending value) into a PolicyFile; policy.ts compiles and evaluates it.

import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { policySchema, type PolicyFile } from './policy-schema.js';

/** A rejected policy file: one `file:line:col: key.path: message` per problem. */
export class PolicyError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'PolicyError';
  }
}

type Key = string | number;

function showPath(path: readonly Key[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out === '' ? k : `.${k}`;
  return out || '(top level)';
}

/** file:line:col of the node at a key path, or of its nearest parent that exists. */
function position(file: string, doc: Document, lines: LineCounter, path: readonly Key[], keyOf?: string): string {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    if (node !== null && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
      let offset = node.range[0] as number;
      if (keyOf !== undefined && n === path.length && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === keyOf);
        if (pair !== undefined && isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
      }
      const { line, col } = lines.linePos(offset);
      return `${file}:${line}:${col}`;
    }
  }
  return `${file}:1:1`;
}

/** Problems from zod, positioned; messages name types and keys, never the offending value. */
function zodProblems(file: string, doc: Document, lines: LineCounter, issues: readonly z.core.$ZodIssue[]): string[] {
  // A misspelt key explains the "missing" error of the key it was meant to be: report it first.
  const ordered = [...issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
  return ordered.map((issue) => {
    const path = issue.path.filter((k): k is Key => typeof k !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0] as string;
      const what = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      return `${position(file, doc, lines, path, key)}: ${showPath([...path, key])}: ${what}`;
    }
    if (issue.code === 'invalid_key') {
      return `${position(file, doc, lines, path)}: ${showPath(path)}: the key is not a namespace name or glob`;
    }
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
      return `${position(file, doc, lines, path)}: ${showPath(path)}: required key missing`;
    }
    return `${position(file, doc, lines, path)}: ${showPath(path)}: ${issue.message}`;
  });
}

/** Parses and validates policy text; throws PolicyError (and nothing else) when it is not valid. */
export function parsePolicyFile(text: string, file: string): PolicyFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        // The first line names the problem; the rest of yaml's message is an excerpt of the file.
        const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
        return `${file}:${line}:${col}: ${first}`;
      }),
    );
  }
  let raw: unknown;
  try {
    // toJS enforces yaml's alias budget (maxAliasCount), so a billion-laughs file fails here.
    raw = doc.toJS();
  } catch (err) {
    throw new PolicyError([`${file}:1:1: ${err instanceof Error ? err.message.split('\n')[0] : 'cannot read the document'}`]);
  }
  if (raw === null || raw === undefined) {
    // An emptied ConfigMap must not become "no policy, allow everything".
    throw new PolicyError([`${file}:1:1: the policy is empty (an empty policy is written 'namespaces: {}' and 'rules: []')`]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError([`${file}:1:1: the policy must be a YAML mapping`]);
  const result = policySchema.safeParse(raw);
  if (!result.success) throw new PolicyError(zodProblems(file, doc, lines, result.error.issues));
  return result.data;
}
