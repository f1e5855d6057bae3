// The authorization policy file's schema (docs/authz.md): strict zod objects, so a misspelt key is
// an error with its key path rather than a rule that silently matches nothing.

import { z } from 'zod';
import { DNS_SUBDOMAIN_NAME } from '../k8s/names.js';

/** Kubernetes DNS label (namespace, service), `*` allowed as a glob. */
const labelGlob = z.string().regex(/^[a-z0-9*-]{1,63}$/, 'expected a Kubernetes name (lower case letters, digits, -) or a glob with *');
/** Kubernetes DNS subdomain (service account, node), `*` allowed. */
const subdomainGlob = z.string().regex(/^[a-z0-9.*-]{1,253}$/, 'expected a Kubernetes name (lower case letters, digits, ., -) or a glob with *');
/** Printable ASCII, no spaces: identities and bound names. */
const printable = (what: string, max: number) => z.string().regex(new RegExp(`^[\\x21-\\x7e]{1,${max}}$`), `expected ${what} (printable ASCII, no spaces)`);

const portName = z.string().regex(/^(?=.*[a-z])[a-z0-9-]{1,15}$/, 'expected a port number (1-65535) or a port name');
const port = z.union([z.number().int().min(1).max(65535), portName], { error: 'expected a port number (1-65535) or a port name' });

const method = z.string().regex(/^[A-Z]{1,20}$/, 'expected an HTTP method in upper case (GET, POST, ...)');

/**
 * A path prefix. Dot segments, `//`, `%` escapes and backslashes are refused: a request path is
 * matched after the same checks, and a prefix that only an ambiguous path could match is a mistake.
 */
const pathPrefix = z
  .string()
  .regex(/^\/[\x21-\x7e]{0,1023}$/, 'expected a path prefix starting with / (printable ASCII, no spaces)')
  .refine((p) => !/[?#%\\]/.test(p), 'a path prefix has no query (?), fragment (#), % escape or backslash')
  .refine(
    (p) => !p.split('/').some((seg, i, all) => seg === '.' || seg === '..' || (seg === '' && i > 0 && i < all.length - 1)),
    'a path prefix has no . or .. segment and no //',
  );

const nonEmpty = <T extends z.ZodType>(item: T) => z.array(item).min(1, 'expected a non-empty list');

const callerSchema = z
  .strictObject({
    identity: printable('an identity or a glob with *', 512).optional(),
    namespace: labelGlob.optional(),
    serviceAccount: subdomainGlob.optional(),
    node: subdomainGlob.optional(),
    unauthenticated: z.literal(true, { error: 'unauthenticated takes only true (omit it to match authenticated callers)' }).optional(),
  })
  .superRefine((c, ctx) => {
    const keys = (['identity', 'namespace', 'serviceAccount', 'node'] as const).filter((k) => c[k] !== undefined);
    if (c.unauthenticated === true && keys.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['unauthenticated'],
        message: `unauthenticated: true stands alone (an unauthenticated caller has no ${keys.join(', ')})`,
      });
    } else if (c.unauthenticated === undefined && keys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'a caller needs identity, namespace, serviceAccount, node or unauthenticated: true (namespace: "*" is any workload)',
      });
    }
    if (c.node !== undefined && (c.namespace !== undefined || c.serviceAccount !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['node'], message: 'a node identity has no namespace or service account: put node in its own caller entry' });
    }
  });

const destinationSchema = z
  .strictObject({
    namespace: labelGlob.optional(),
    service: labelGlob.optional(),
    name: printable('a bound name starting with / or a glob with *', 1024)
      .refine((n) => n.startsWith('/'), 'a name starts with /')
      .optional(),
    ports: nonEmpty(port).optional(),
    methods: nonEmpty(method).optional(),
    paths: nonEmpty(pathPrefix).optional(),
    /** The service account of the pod that answers (known on the incoming router's delivery check). */
    serviceAccount: labelGlob.optional(),
  })
  .superRefine((d, ctx) => {
    if (d.namespace === undefined && d.service === undefined && d.name === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a destination needs namespace, service or name (namespace: "*" is any Kubernetes service)' });
    }
  });

const namespaceDefault = z.enum(['allow', 'deny', 'audit']);

/** `payments: deny` is short for `payments: {default: deny}`. */
const namespaceSetting = z.preprocess(
  (v) => (typeof v === 'string' ? { default: v } : v),
  z.strictObject({
    default: namespaceDefault.optional(),
    allowDtabOverride: z.boolean().optional(),
  }),
);

const ruleName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a rule name (letters, digits, . _ -; at most 128)');

const ruleSchema = z.strictObject({
  name: ruleName,
  description: z.string().max(1024).optional(),
  from: nonEmpty(callerSchema),
  to: nonEmpty(destinationSchema),
});

export const policySchema = z
  .strictObject({
    trustDomain: z.string().regex(DNS_SUBDOMAIN_NAME, 'expected a DNS name such as cluster.local').optional(),
    // Required, even if empty: a ConfigMap that lost its namespaces would otherwise turn a
    // deny-by-default mesh into allow-everything on reload.
    namespaces: z.record(labelGlob, namespaceSetting),
    rules: z.array(ruleSchema),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.rules.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule name '${r.name}' is used twice` });
      seen.add(r.name);
    });
  });

export type PolicyFile = z.infer<typeof policySchema>;
export type CallerEntry = z.infer<typeof callerSchema>;
export type DestinationEntry = z.infer<typeof destinationSchema>;
export type NamespaceDefault = z.infer<typeof namespaceDefault>;
