// The error of a rejected policy file. Apart from policy-file.ts so that the router's thread can
// name it without loading the validator (zod and the YAML parser live in the parser process).

/** A rejected policy file: one `file:line:col: key.path: message` per problem. */
export class PolicyError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'PolicyError';
  }
}
