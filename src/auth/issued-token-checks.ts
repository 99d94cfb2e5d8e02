import type { JWTPayload } from 'jose';
import { TokenExchangeError } from '../errors.js';
import { peekJwtClaims } from './jwt-claims.js';
import type { ExchangeRequest, IssuedToken } from './token-exchange.js';
import type { SubjectInfo } from './token-service.js';

/**
 * Checks a delegated token before it is ever used. Applies when the
 * issued token is a JWT; an opaque token cannot be inspected and passes (its scope and lifetime are
 * still bounded by token-exchange.ts and the cache). The claims are decoded, not verified: the token
 * came straight from the AS over the connection we opened, and the upstream verifies it; these
 * checks catch an AS that answers with something other than what was asked for.
 * Any failure is outcome `rejected`: 502 to the agent, the token is dropped.
 */
export interface IssuedTokenCheckOptions {
  /** authorizationServer.allowIssuedExpAfterSubject */
  readonly allowExpAfterSubject: boolean;
}

export function checkIssuedToken(
  issued: IssuedToken,
  request: ExchangeRequest,
  subject: SubjectInfo,
  options: IssuedTokenCheckOptions = { allowExpAfterSubject: false },
): void {
  const claims = peekJwtClaims(issued.accessToken);
  if (claims === undefined) return;
  const problem = findProblem(claims, request, subject, options);
  if (problem !== undefined) {
    throw new TokenExchangeError(
      'bad_gateway',
      'the authorization server issued a token that does not match the request',
      'rejected',
      {
        detail: `issued token refused: ${problem}`,
      },
    );
  }
}

function findProblem(
  claims: JWTPayload,
  request: ExchangeRequest,
  subject: SubjectInfo,
  options: IssuedTokenCheckOptions,
): string | undefined {
  const aud = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  // RFC 8693 §2.1: audience and resource name where the token is to be used; a token for somewhere
  // else (or for anywhere) must not be sent to this upstream.
  for (const [name, wanted] of [
    ['audience', request.audience],
    ['resource', request.resource],
  ] as const) {
    if (wanted !== undefined && !aud.includes(wanted)) {
      return `aud ${JSON.stringify(claims.aud ?? null)} does not contain the requested ${name} ${JSON.stringify(wanted)}`;
    }
  }
  // Delegation must not change whose authority is used.
  if (subject.sub !== undefined && claims.sub !== undefined && claims.sub !== subject.sub) {
    return `sub ${JSON.stringify(claims.sub)} differs from the subject token's sub ${JSON.stringify(subject.sub)}`;
  }
  // RFC 8693 §4.1: with an actor token the result is a delegation and must say who acts.
  if (request.actorToken !== undefined && (claims.act === null || typeof claims.act !== 'object')) {
    return 'an actor token was sent but the issued token has no act claim';
  }
  if (
    !options.allowExpAfterSubject &&
    subject.expiresAt !== undefined &&
    typeof claims.exp === 'number' &&
    claims.exp * 1000 > subject.expiresAt
  ) {
    return `exp ${claims.exp} is after the subject token's exp ${subject.expiresAt / 1000}`;
  }
  // The response's `scope` is checked in token-exchange.ts; the token's own claim must agree.
  if (request.scopes.length > 0) {
    const granted = scopesOf(claims);
    const extra = granted?.filter((s) => !request.scopes.includes(s)) ?? [];
    if (extra.length > 0) return `scope claim exceeds the request: ${extra.join(' ')}`;
  }
  return undefined;
}

/** `scope` (RFC 9068 §2.2.3, space-separated) or `scp` (a list, as some servers issue it). */
function scopesOf(claims: JWTPayload): string[] | undefined {
  if (typeof claims.scope === 'string') return claims.scope.split(' ').filter((s) => s !== '');
  if (Array.isArray(claims.scp)) return claims.scp.filter((s): s is string => typeof s === 'string');
  if (typeof claims.scp === 'string') return claims.scp.split(' ').filter((s) => s !== '');
  return undefined;
}
