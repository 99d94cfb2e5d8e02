import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import { GuardError } from './errors.js';

export { GuardError, type GuardErrorCode } from './errors.js';
export { checkMcpRequest, McpRequestError, type RequestHeaders } from './mcp-request.js';

/** Options of {@link createGuard}. */
export interface GuardOptions {
  /** Expected `iss`: the authorization server that issues the delegated tokens. */
  readonly issuer: string;
  /** Expected `aud`: this MCP server (one value, or any of several). */
  readonly audience: string | readonly string[];
  /** The authorization server's JWKS (keys are fetched and cached by jose). */
  readonly jwksUri: string;
  /** Accepted signature algorithms. Default RS256, ES256, PS256, EdDSA. */
  readonly algorithms?: readonly string[];
  /** Seconds of clock difference tolerated on `exp`/`nbf`/`iat`. Default 5. */
  readonly clockTolerance?: number;
  /** Required JWT `typ` header, e.g. `at+jwt` (RFC 9068 §2.1). Default: not checked. */
  readonly typ?: string;
  /** `realm` of the challenges. Default `mcp`. */
  readonly realm?: string;
  /** The current time, for tests. Default the system clock. */
  readonly now?: () => Date;
}

/** Verified claims of a delegated token. */
export interface GuardClaims extends JWTPayload {
  readonly scope?: string;
}

/** Verifies delegated tokens and checks their scopes at an MCP server's handlers. */
export interface Guard {
  /**
   * Verifies `Authorization: Bearer <jwt>` (signature, `iss`, `aud`, `exp`/`nbf`) and returns the
   * claims. Throws a {@link GuardError}: `invalid_token` (401) for a missing or bad token,
   * `invalid_request` (400) for a malformed header.
   */
  verify(authorizationHeader: string | undefined): Promise<GuardClaims>;
  /** Throws an `insufficient_scope` {@link GuardError} (403) unless the claims grant every scope. */
  requireScopes(claims: GuardClaims, scopes: readonly string[]): void;
}

const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'];
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * A guard for MCP servers behind delegate-proxy (defence in depth): verify the delegated JWT and
 * require per-tool scopes. Depends on jose only.
 *
 * @example
 * const guard = createGuard({ issuer, audience: 'https://mcp.example.com', jwksUri });
 * const claims = await guard.verify(req.headers.authorization);
 * guard.requireScopes(claims, ['mcp:tools:write', 'files:delete']);
 */
export function createGuard(options: GuardOptions): Guard {
  const jwks = createRemoteJWKSet(new URL(options.jwksUri));
  const realm = options.realm ?? 'mcp';
  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  return {
    async verify(header) {
      if (header === undefined || header === '')
        throw new GuardError('invalid_token', 'no bearer token', { realm, bare: true });
      const match = BEARER.exec(header);
      if (match === null)
        throw new GuardError('invalid_request', 'the Authorization header is not a Bearer token', { realm });
      try {
        const { payload } = await jwtVerify(match[1]!, jwks, {
          issuer: options.issuer,
          audience,
          algorithms,
          clockTolerance: options.clockTolerance ?? 5,
          ...(options.typ === undefined ? {} : { typ: options.typ }),
          ...(options.now === undefined ? {} : { currentDate: options.now() }),
        });
        return payload as GuardClaims;
      } catch (err) {
        throw new GuardError('invalid_token', describe(err), { realm, cause: err });
      }
    },
    requireScopes(claims, scopes) {
      const granted = scopesOf(claims);
      const missing = scopes.filter((s) => !granted.has(s));
      if (missing.length > 0) {
        throw new GuardError('insufficient_scope', `the token lacks scope ${missing.join(' ')}`, {
          realm,
          scope: scopes,
        });
      }
    },
  };
}

/** The scopes a token grants: the `scope` claim (RFC 9068 §2.2.3, RFC 8693 §4.2), space-separated. */
export function scopesOf(claims: GuardClaims): ReadonlySet<string> {
  return new Set(typeof claims.scope === 'string' ? claims.scope.split(' ').filter((s) => s !== '') : []);
}

function describe(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not accepted`;
  return 'the token is not valid';
}
