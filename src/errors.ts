/**
 * Every runtime failure the proxy can answer with. `code` is stable (callers and tests switch on it),
 * `status` is the HTTP status the agent gets, `description` is safe to show the agent, and `detail`
 * plus `cause` are for operators only (logs), never sent to the agent.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'no_route'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'internal_error'
  | 'websocket_disabled'
  | 'host_not_allowed'
  | 'bad_gateway'
  | 'temporarily_unavailable'
  | 'gateway_timeout';

export interface ProxyErrorOptions {
  /** Operator-facing detail: logged, never sent to the agent. */
  detail?: string;
  cause?: unknown;
  /** RFC 6750 §3 `scope` attribute for insufficient_scope challenges. */
  scope?: readonly string[];
  /** Seconds for `Retry-After` (503). */
  retryAfterSeconds?: number;
  /** Extra response headers (already validated values). */
  headers?: Record<string, string>;
  /** A JSON body that replaces the default `{error, error_description}` (MCP: JSON-RPC error objects). */
  body?: unknown;
  /** HTTP status when it differs from the code's. */
  status?: number;
  /** RFC 9728 §5.1 `resource_metadata` attribute for 401/403 challenges. */
  resourceMetadata?: string;
}

const STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  no_route: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  internal_error: 500,
  // docs/websocket.md: the route refuses upgrades; not a token problem, so no Bearer challenge.
  websocket_disabled: 403,
  // docs/security.md "DNS rebinding": the request names a host the listener does not serve.
  host_not_allowed: 403,
  bad_gateway: 502,
  temporarily_unavailable: 503,
  gateway_timeout: 504,
};

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** The public description sent to the agent. */
  readonly description: string;
  readonly detail: string | undefined;
  readonly scope: readonly string[] | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly body: unknown;
  readonly resourceMetadata: string | undefined;

  constructor(code: ErrorCode, description: string, options: ProxyErrorOptions = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.status = options.status ?? STATUS[code];
    this.description = description;
    this.detail = options.detail;
    this.scope = options.scope;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers = options.headers;
    this.body = options.body;
    this.resourceMetadata = options.resourceMetadata;
  }
}

/**
 * The one place an exception becomes what the agent gets: a ProxyError as it is; anything else is
 * a defect of the proxy, a 500 `internal_error` (never a 502 that would blame the upstream).
 */
export function toProxyError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  return new ProxyError('internal_error', 'the proxy failed to handle the request', { cause: err });
}

/** Why a token exchange failed, as seen at the authorization server (metric label `outcome`). */
export type ExchangeOutcome =
  | 'success'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'invalid_target'
  | 'invalid_client'
  | 'error'
  | 'unavailable'
  | 'rejected';

/** A failed token exchange: the agent-facing error plus the metric outcome and the AS's own answer. */
export class TokenExchangeError extends ProxyError {
  readonly outcome: Exclude<ExchangeOutcome, 'success'>;
  /** The AS's `error` code when it sent one (RFC 6749 §5.2). */
  readonly asError: string | undefined;

  constructor(
    code: ErrorCode,
    description: string,
    outcome: Exclude<ExchangeOutcome, 'success'>,
    options: ProxyErrorOptions & { asError?: string } = {},
  ) {
    super(code, description, options);
    this.name = 'TokenExchangeError';
    this.outcome = outcome;
    this.asError = options.asError;
  }
}

/** Invalid configuration: every problem, each naming its path. */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
