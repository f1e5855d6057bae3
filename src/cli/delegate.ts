// `hostmesh delegate [-c config --router label] [--dtab d | --dtab-file f] [--fs-root dir] [--json] PATH`:
// explains how a path binds: the delegation tree (each step with its dentry) and the bound result.

import type { Command } from 'commander';
import { ConfigError } from '../config/config-error.js';
import { InputFileError, readInputFile } from '../fs/read-input.js';
import { Dtab } from '../dtab/dtab.js';
import { formatDtabFileError } from '../dtab/file-errors.js';
import { DtabParseError, parsePath } from '../dtab/parse.js';
import type { Namer } from '../namer/addr.js';
import { boundTree, delegateJson, renderDelegateText, showBound, type DelegateNode } from '../namer/delegate-tree.js';
import { FsNamer } from '../namer/fs-namer.js';
import { NameInterpreter } from '../namer/interpreter.js';
import type { Io } from './run.js';

export interface DelegateArgs {
  path: string;
  config?: string;
  router?: string;
  dtab?: string;
  dtabFile?: string;
  fsRoot?: string;
  json?: boolean;
  set?: string[];
}

/** The message of a binding budget error, when evaluation stopped on one (the whole tree is then that node). */
function overBudget(node: DelegateNode): string | undefined {
  return node.type === 'exception' && node.dentry === null && / exceeded the binding budget/.test(node.message) ? node.message : undefined;
}

function hasLoop(node: DelegateNode): boolean {
  switch (node.type) {
    case 'exception':
      return node.message.startsWith('delegation loop');
    case 'delegate':
      return hasLoop(node.delegate);
    case 'alt':
      return node.alt.some(hasLoop);
    case 'union':
      return node.union.some((m) => hasLoop(m.tree));
    default:
      return false;
  }
}

/** Exit 0 when delegation completed (whatever the result), 1 on a parse error, loop or budget error, 2 on bad usage. */
export async function runDelegate(args: DelegateArgs, io: Io): Promise<number> {
  if (args.dtab !== undefined && args.dtabFile !== undefined) {
    io.err('use --dtab or --dtab-file, not both');
    return 2;
  }
  if (args.router !== undefined && args.config === undefined) {
    io.err('--router needs -c <config>');
    return 2;
  }
  const namers: Namer[] = [];
  let base = Dtab.empty;
  let budget: number | undefined;
  try {
    if (args.config !== undefined) {
      const { loadConfig } = await import('../config/load.js'); // not loaded by `hostmesh run` (load-off-thread.ts)
      const { config } = await loadConfig(args.config, { set: args.set ?? [] });
      const router = args.router === undefined ? config.routers[0] : config.routers.find((r) => r.label === args.router);
      if (router === undefined) {
        io.err(`no router labelled '${args.router ?? ''}' in ${args.config} (have: ${config.routers.map((r) => r.label).join(', ')})`);
        return 2;
      }
      base = Dtab.read(router.dtab);
      budget = router.bindingBudget;
      for (const n of config.namers) if (n.kind === 'io.l5d.fs') namers.push(new FsNamer({ rootDir: n.rootDir, prefix: parsePath(n.prefix) }));
    }
    if (args.fsRoot !== undefined) namers.push(new FsNamer({ rootDir: args.fsRoot }));
    let extra = Dtab.empty;
    if (args.dtab !== undefined) extra = Dtab.read(args.dtab);
    if (args.dtabFile !== undefined) {
      let text: string;
      try {
        // A bounded read: a FIFO would block here for good and /dev/zero would be read forever.
        text = (await readInputFile(args.dtabFile, 'dtab file')).toString('utf8');
      } catch (err) {
        if (!(err instanceof InputFileError)) throw err;
        io.err(err.message);
        // Unreadable (missing, no permission) stays a usage error; a file refused for what it is
        // (not a regular file, over 1 MiB) is bad input, as a dtab that fails to parse.
        return err.code !== undefined ? 2 : 1;
      }
      try {
        extra = Dtab.read(text);
      } catch (err) {
        if (err instanceof DtabParseError) {
          io.err(formatDtabFileError(args.dtabFile, text, err));
          return 1;
        }
        throw err;
      }
    }
    const path = parsePath(args.path);
    const interpreter = new NameInterpreter({ namers });
    const tree = await interpreter.delegate(base.concat(extra), path, { timeoutMs: 3000, budget });
    const bound = showBound(boundTree(tree));
    if (args.json) {
      io.out(JSON.stringify({ path: path.show(), tree: delegateJson(tree), bound }, null, 2));
    } else {
      io.out(renderDelegateText(tree));
      io.out(`bound: ${bound}`);
    }
    const budgetError = overBudget(tree);
    if (budgetError !== undefined) {
      io.err(`${budgetError}; the tree is not shown (raise the router's bindingBudget to see it)`);
      return 1;
    }
    return hasLoop(tree) ? 1 : 0;
  } catch (err) {
    if (err instanceof DtabParseError) {
      io.err(err.message);
      return 1;
    }
    if (err instanceof ConfigError) {
      for (const p of err.problems) io.err(p);
      return 2;
    }
    throw err;
  } finally {
    for (const n of namers) await n.close?.();
  }
}

export function registerDelegate(program: Command): void {
  program
    .command('delegate')
    .description('explain how a path binds through a dtab (delegation tree and bound result)')
    .argument('<path>', 'the path to delegate, e.g. /svc/world')
    .option('-c, --config <file>', 'take the dtab and namers of a router from this config')
    .option('--router <label>', 'the router whose dtab to use (with -c)')
    .option('--dtab <dtab>', 'a dtab appended to the router dtab, as an l5d-dtab header would be')
    .option('--dtab-file <file>', 'read the dtab from a file')
    .option('--fs-root <dir>', 'mount an io.l5d.fs namer on this directory')
    .option('--set <key=value>', 'override a config value (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--json', 'print one JSON object: path, tree, bound')
    .action(async (path: string, opts: Omit<DelegateArgs, 'path'>) => {
      process.exitCode = await runDelegate({ path, ...opts }, { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') });
    });
}
