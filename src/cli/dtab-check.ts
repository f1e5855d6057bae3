// `hostmesh dtab check FILE...`: parses each dtab file; every error goes to stderr as
// `file:line:col: message`. Exit 0 valid, 1 invalid, 2 missing file or bad usage.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { DtabParseError, parseDtab } from '../dtab/parse.js';
import type { Io } from './run.js';

export async function runDtabCheck(files: readonly string[], io: Io): Promise<number> {
  if (files.length === 0) {
    io.err('usage: hostmesh dtab check FILE...');
    return 2;
  }
  let invalid = false;
  let missing = false;
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      io.err(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      missing = true;
      continue;
    }
    try {
      const dtab = parseDtab(text);
      io.out(`${file}: ok (${dtab.dentries.length} dentries)`);
    } catch (err) {
      if (!(err instanceof DtabParseError)) throw err;
      io.err(formatDtabFileError(file, text, err));
      invalid = true;
    }
  }
  return missing ? 2 : invalid ? 1 : 0;
}

export function registerDtabCheck(program: Command): void {
  const dtab = program.command('dtab').description('work with dtab files');
  dtab
    .command('check')
    .description('parse dtab files; errors as file:line:col: message')
    .argument('<files...>')
    .action(async (files: string[]) => {
      process.exitCode = await runDtabCheck(files, {
        out: (l) => process.stdout.write(l + '\n'),
        err: (l) => process.stderr.write(l + '\n'),
      });
    });
}
