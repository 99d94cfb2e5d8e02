/** Stable codes of {@link GuardError}, as in RFC 6750 §3.1. */
export type GuardErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

const STATUS: Record<GuardErrorCode, number> = { invalid_request: 400, invalid_token: 401, insufficient_scope: 403 };

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}

/**
 * A refused request: `status` and `wwwAuthenticate` are what to answer with (RFC 6750 §3);
 * `message` is safe to show the caller, `cause` (a jose error) is for logs.
 */
export class GuardError extends Error {
  readonly code: GuardErrorCode;
  readonly status: number;
  /** Scopes the request needs (insufficient_scope only). */
  readonly scope: readonly string[] | undefined;
  /** The `WWW-Authenticate` value to send with the response. */
  readonly wwwAuthenticate: string;

  constructor(
    code: GuardErrorCode,
    message: string,
    options: { scope?: readonly string[]; cause?: unknown; realm?: string; bare?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GuardError';
    this.code = code;
    this.status = STATUS[code];
    this.scope = options.scope;
    const realm = `Bearer realm=${quote(options.realm ?? 'mcp')}`;
    // RFC 6750 §3.1: a request without credentials gets no error code in the challenge.
    let challenge = options.bare ? realm : `${realm}, error=${quote(code)}`;
    if (options.scope !== undefined && options.scope.length > 0)
      challenge += `, scope=${quote(options.scope.join(' '))}`;
    this.wwwAuthenticate = challenge;
  }
}
