// `hostmesh authz check FILE` validates a policy file; `hostmesh authz explain` says whether one
// call is allowed and which rule or namespace default decided (docs/authz.md). Exit codes: check
// 0 valid, 1 invalid, 2 missing file; explain 0 allow (audit included), 1 deny, 2 usage or bad file.

import type { Command } from 'commander';
import { parseExplainCaller, parseExplainDestination } from '../authz/explain-args.js';
import { InputFileError, readInputFile } from '../fs/read-input.js';
import { PolicyError, type AuthzCaller, type AuthzDestination, type Policy } from '../authz/policy.js';
import type { Io } from './run.js';

export interface ExplainArgs {
  policy: string;
  from: string;
  to: string;
  method?: string;
  path?: string;
  json?: boolean;
}

class UsageError extends Error {}

async function readPolicy(file: string, io: Io): Promise<Policy | number> {
  let text: string;
  try {
    // Bounded like every input file: a regular file of at most 1 MiB, never a FIFO or a device.
    text = (await readInputFile(file, 'policy')).toString('utf8');
  } catch (err) {
    if (!(err instanceof InputFileError)) throw err;
    io.err(err.message);
    return 2;
  }
  // Loaded here: `hostmesh run` registers this command, and the validator is not the router's.
  const { parsePolicy } = await import('../authz/parse-policy.js');
  try {
    return parsePolicy(text, file);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    for (const p of err.problems) io.err(p);
    return 1;
  }
}

export async function runAuthzCheck(file: string, io: Io): Promise<number> {
  const policy = await readPolicy(file, io);
  if (typeof policy === 'number') return policy;
  io.out(`${file}: ok (${policy.ruleCount} rule${policy.ruleCount === 1 ? '' : 's'}, trust domain ${policy.trustDomain})`);
  return 0;
}

/** As the dashboard's explain box reads them (authz/explain-args.ts); a usage error otherwise. */
function callerFromArg(from: string, trustDomain: string): AuthzCaller {
  const caller = parseExplainCaller(from, trustDomain);
  if (caller === undefined) throw new UsageError(`--from ${from}: expected unauthenticated, an identity, or <namespace>/<serviceaccount>`);
  return caller;
}

function destinationFromArg(to: string): AuthzDestination {
  const dest = parseExplainDestination(to, '/io.l5d.k8s');
  if (dest === undefined) throw new UsageError(`--to ${to}: expected <namespace>/<service>[:port] or a bound name such as /#/io.l5d.k8s/<ns>/<port>/<svc>`);
  return dest;
}

export async function runAuthzExplain(args: ExplainArgs, io: Io): Promise<number> {
  const policy = await readPolicy(args.policy, io);
  if (typeof policy === 'number') return 2;
  let caller: AuthzCaller;
  let dest: AuthzDestination;
  try {
    caller = callerFromArg(args.from, policy.trustDomain);
    dest = destinationFromArg(args.to);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(err.message);
    return 2;
  }
  const method = (args.method ?? 'GET').toUpperCase();
  const path = args.path ?? '/';
  const d = policy.decide({ caller, dest, method, path });
  const dtabOverride = policy.dtabOverrideAllowed(caller);
  if (args.json === true) {
    io.out(
      JSON.stringify(
        {
          decision: d.decision,
          audit: d.audit,
          rule: d.rule,
          default: d.default,
          reason: d.reason,
          dtabOverrideAllowed: dtabOverride,
          request: { caller, dest, method, path },
        },
        null,
        2,
      ),
    );
  } else {
    io.out(d.decision === 'allow' ? (d.audit ? 'allow (audit: would deny when enforced)' : 'allow') : 'deny');
    io.out(
      `decided by: ${d.rule !== undefined ? `rule ${d.rule}` : `the default of namespace ${dest.namespace ?? '(none: not a Kubernetes service)'} (${d.default ?? '?'})`}`,
    );
    io.out(`reason: ${d.reason}`);
    io.out(`l5d-dtab overrides from this caller: ${dtabOverride ? 'allowed' : 'refused'}`);
  }
  return d.decision === 'allow' ? 0 : 1;
}

const stdio: Io = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

export function registerAuthz(program: Command): void {
  const authz = program.command('authz').description('authorization policy: validate a policy file, explain a decision');
  authz
    .command('check')
    .description('validate a policy file; errors as file:line:col: key.path: message')
    .argument('<file>')
    .action(async (file: string) => {
      process.exitCode = await runAuthzCheck(file, stdio);
    });
  authz
    .command('explain')
    .description('say whether a call is allowed, and which rule or namespace default decided (exit 0 allow, 1 deny)')
    .requiredOption('-p, --policy <file>', 'the policy file')
    .requiredOption('--from <caller>', 'unauthenticated, an identity, or <namespace>/<serviceaccount>')
    .requiredOption('--to <destination>', '<namespace>/<service>[:port], or a bound name such as /#/io.l5d.k8s/<ns>/<port>/<svc>')
    .option('--method <method>', 'HTTP method', 'GET')
    .option('--path <path>', 'request path', '/')
    .option('--json', 'machine-readable output')
    .action(async (opts: ExplainArgs) => {
      process.exitCode = await runAuthzExplain(opts, stdio);
    });
}
