// Test helper: renders a kustomization with the real `kubectl kustomize` and parses the documents.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './paths.js';

export { ROOT };

/** A Kubernetes object as rendered (only what the tests read is typed). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

function parseDocs(text: string, where: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc, i) => {
      if (doc.errors.length > 0) throw new Error(`${where} document ${i}: ${doc.errors[0]?.message ?? ''}`);
      return doc.toJS() as Manifest;
    })
    .filter((m) => m !== null);
}

export function kustomize(dir: string): Manifest[] {
  const out = execFileSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseDocs(out, dir);
}

export function manifestFile(file: string): Manifest[] {
  return parseDocs(readFileSync(join(ROOT, file), 'utf8'), file);
}

export function one(list: readonly Manifest[], kind: string, name?: string): Manifest {
  const found = list.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0] as Manifest;
}
