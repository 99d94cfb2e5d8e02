import { peekJwtClaims } from '../auth/jwt-claims.js';

/**
 * The user's grants as their token states them (RFC 8693 §4.2 / RFC 9068 `scope`: space-separated),
 * decoded without verification: used only to pick a base scope and to hide tools the AS would
 * refuse anyway, never to allow anything. Opaque tokens and tokens without `scope` give undefined.
 */
export function grantsOf(subjectToken: string | undefined): ReadonlySet<string> | undefined {
  if (subjectToken === undefined) return undefined;
  const scope = peekJwtClaims(subjectToken)?.scope;
  if (typeof scope !== 'string') return undefined;
  return new Set(scope.split(' ').filter((s) => s !== ''));
}
