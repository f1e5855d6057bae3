// The error catalog: every error hostmesh answers a request with, or reports to a user, has a
// code here with its HTTP status, retryable flag and, where its wording is fixed, message templates.
// One place (server/rescue) renders them, onto an HTTP response or as raw bytes on a socket.

export interface ErrorSpec {
  /** HTTP status when this error answers a request. */
  readonly status: number;
  /** Safe to retry on another endpoint (nothing reached the application). */
  readonly retryable: boolean;
  /** What the error means, for docs and the admin page. */
  readonly description: string;
  /**
   * The error's wordings where they do not vary, by name; `{param}` is filled from the
   * parameters given to HostmeshError.of. Codes whose reason comes from elsewhere (a namer, a
   * socket error) have none.
   */
  readonly messages?: Readonly<Record<string, string>>;
}

export const ERRORS = {
  BAD_REQUEST: {
    status: 400,
    retryable: false,
    description: 'The request is malformed (parser error, bad Host, bad scheme).',
    messages: {
      parser: 'bad request: {reason}',
      connectTarget: "CONNECT needs host:port, got '{authority}'",
      duplicateHost: 'more than one Host field',
      transferEncoding10: 'Transfer-Encoding in an HTTP/1.0 request',
      fragment: 'a fragment (#) in the request target',
    },
  },
  NOT_IMPLEMENTED: {
    status: 501,
    retryable: false,
    description: 'The request body has a transfer coding other than chunked (gzip, chunked): the router cannot relay it as sent.',
    messages: { transferCoding: "transfer coding '{coding}' is not supported: only chunked" },
  },
  HTTP_VERSION_NOT_SUPPORTED: {
    status: 505,
    retryable: false,
    description: 'The request line names an HTTP version other than 1.0 or 1.1 that the parser took (HTTP/2.0 on an HTTP/1 port).',
    messages: { version: 'HTTP/{version} is not served here: this port speaks HTTP/1.1' },
  },
  NO_HOST: { status: 400, retryable: false, description: 'The request cannot be identified: it has no Host.' },
  BAD_DTAB_HEADER: { status: 400, retryable: false, description: 'An l5d-dtab or l5d-ctx-dtab header does not parse.' },
  OVERRIDE_OVER_BUDGET: {
    status: 400,
    retryable: false,
    description: "Binding through the request's dtab override (l5d-dtab, l5d-ctx-dtab) exceeded the router's bindingBudget.",
  },
  PROXY_LOOP: {
    status: 400,
    retryable: false,
    description: 'The request passed through more routers (Via hops) than allowed.',
    messages: { hops: 'proxy loop: more than {maxHops} hops in Via' },
  },
  CONNECT_REFUSED: {
    status: 403,
    retryable: false,
    description: 'CONNECT to a name that does not bind, to a port other than 80, or on the incoming (mTLS) side.',
    messages: {
      incoming: 'CONNECT is not accepted here (the incoming side serves peer routers)',
      port: 'CONNECT {authority}: only port 80 of mesh names is tunnelled',
      unbound: 'CONNECT {authority}: {host} is not a mesh name (it does not bind)',
    },
  },
  ADMIN_REFUSED: {
    status: 403,
    retryable: false,
    description:
      'An admin request with a foreign Host or Origin, or a state change without the hostmesh-admin header, sent through a router, or (shutdown) from off the host.',
  },
  IDENTITY_REFUSED: {
    status: 403,
    retryable: false,
    description: 'A peer router claimed a workload identity it cannot speak for (pod unknown, on another node, or with another service account).',
  },
  AUTHZ_DENIED: {
    status: 403,
    retryable: false,
    description:
      "The authorization policy does not allow this caller to reach the request's final destination (no rule allows it and the namespace defaults to deny).",
  },
  DTAB_OVERRIDE_REFUSED: {
    status: 403,
    retryable: false,
    description: "The request carries an l5d-dtab override, and the authorization policy sets allowDtabOverride: false for the caller's namespace.",
  },
  METHOD_NOT_ALLOWED: {
    status: 405,
    retryable: false,
    description: 'The method is not allowed on this endpoint.',
    messages: { postOnly: '{method} {path}: POST only' },
  },
  REQUEST_TIMEOUT: {
    status: 408,
    retryable: false,
    description:
      "The request headers did not arrive within the server's headersTimeoutMs, or the request body made no progress within client.requestBodyIdleTimeoutMs.",
    messages: { headers: 'request headers did not arrive in time' },
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    retryable: false,
    description: 'The request headers exceed the configured size or count.',
    messages: { fields: 'more than {max} header fields', size: 'request line and headers too large' },
  },
  NO_INGRESS_RULE: {
    status: 404,
    retryable: false,
    description: 'An io.l5d.ingress identifier found no served Ingress rule (host and path) nor default backend for the request.',
  },
  INGRESS_NOT_READY: {
    status: 503,
    retryable: true,
    description: "An io.l5d.ingress identifier has not listed the cluster's Ingress resources yet (the API is unreachable or refuses).",
  },
  NO_ROUTE: {
    status: 502,
    retryable: false,
    description: 'The name does not bind: the dtab gives neg or fail, or no namer knows it.',
    messages: { neg: 'no route to {service}: the name does not bind (neg)', fail: 'no route to {service}: the dtab fails it' },
  },
  NO_ENDPOINTS: {
    status: 502,
    retryable: false,
    description: 'The name binds, but to no endpoint (after transformers).',
    messages: { empty: 'no endpoints for {service}: the name binds to an empty set' },
  },
  DELEGATION_LOOP: { status: 502, retryable: false, description: 'Binding exceeded the recursion limit: the dtab loops.' },
  BINDING_FAILED: { status: 502, retryable: false, description: 'A namer failed while binding the name.' },
  BINDING_OVER_BUDGET: {
    status: 502,
    retryable: false,
    description: "Binding through the router's own dtab exceeded its bindingBudget (too many expanded alternatives).",
  },
  CONNECT_FAILED: { status: 502, retryable: true, description: 'The router could not connect to the chosen endpoint.' },
  UPSTREAM_ERROR: { status: 502, retryable: false, description: 'The upstream connection failed, or its answer was malformed, after the request was sent.' },
  TIMEOUT: { status: 503, retryable: false, description: 'Binding or the upstream did not answer in time.' },
  SHED: {
    status: 503,
    retryable: true,
    description:
      'The endpoint was busy: the request exceeded its source or service share and the wait queue was full, or it waited past client.maxWaitMs. Nothing reached the application.',
  },
  ENDPOINT_POOLS_FULL: {
    status: 503,
    retryable: true,
    description:
      'The router has client.maxEndpointPools endpoint pools open, each with requests in flight, so a new endpoint (e.g. one more /$/inet address a dtab override names) gets none. Nothing reached the application.',
    messages: { full: 'endpoint pools full: {max} open, each with requests in flight; {endpoint} refused' },
  },
  SHUTTING_DOWN: {
    status: 503,
    retryable: true,
    description: 'The router is draining and takes no new requests.',
    messages: { draining: 'router is shutting down' },
  },
  INTERNAL: { status: 500, retryable: false, description: 'A bug in hostmesh; the log has the stack.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Codes with fixed wordings, and the names of those wordings. */
type Templated = { [C in ErrorCode]: (typeof ERRORS)[C] extends { messages: object } ? C : never }[ErrorCode];
type TemplateName<C extends Templated> = keyof (typeof ERRORS)[C]['messages'] & string;

function fill(template: string, params: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** An error with a catalog code and the routing context that explains it. */
export class HostmeshError extends Error {
  readonly code: ErrorCode;
  /** Extra lines for the response body (service name, dtabs, delegation path). */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { detail?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HostmeshError';
    this.code = code;
    this.detail = options?.detail;
  }

  /** The error in one of its catalog wordings (ERRORS[code].messages[template], parameters filled). */
  static of<C extends Templated>(
    code: C,
    template: TemplateName<C>,
    params: Readonly<Record<string, string | number>> = {},
    options?: { detail?: string; cause?: unknown },
  ): HostmeshError {
    const messages = ERRORS[code].messages as Readonly<Record<string, string>>;
    return new HostmeshError(code, fill(messages[template] as string, params), options);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }
}
