// `hostmesh dtab check FILE...`: parses each dtab file; every error goes to stderr as
// `file:line:col: message`. Exit 0 valid, 1 invalid, 2 missing or unreadable file or bad usage.

import type { Command } from 'commander';
import { printable } from '../config/printable.js';
import { readInputFile } from '../fs/read-input.js';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { parseDtab } from '../dtab/dtab.js';
import { DtabParseError } from '../dtab/parse.js';
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
      // Regular files up to 1 MiB: a FIFO or /dev/zero is refused instead of hanging the check.
      text = (await readInputFile(file, 'dtab')).toString('utf8');
    } catch (err) {
      io.err(printable((err as Error).message));
      missing = true;
      continue;
    }
    try {
      const dtab = parseDtab(text);
      io.out(printable(`${file}: ok (${dtab.dentries.length} dentries)`));
    } catch (err) {
      // formatDtabFileError shows content only for files that are dtabs up to the error.
      io.err(
        printable(
          err instanceof DtabParseError ? formatDtabFileError(file, text, err) : `${file}: cannot check: ${String((err as Error).message).split('\n')[0]}`,
        ),
      );
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
