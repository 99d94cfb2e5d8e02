import type { JWTPayload } from 'jose';
import { decodeJwt } from 'jose/jwt/decode';

/**
 * Decodes a JWT payload without verifying it. Only for bounding lifetimes and labelling logs,
 * never for an access decision. Returns undefined for opaque tokens.
 */
export function peekJwtClaims(token: string): JWTPayload | undefined {
  if (token.split('.').length !== 3) return undefined;
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}
