import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose/jwt/sign';
import type { SigningKey } from '../config/signing-key.js';
import { type Clock, systemClock } from '../pipeline/clock.js';
import type { ClientAuthenticator } from './client-auth.js';

/** RFC 7523 §2.2 / RFC 7521 §4.2 client assertion type. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Lifetime of one assertion: it is used once, right away. */
const ASSERTION_TTL_SECONDS = 60;

export interface PrivateKeyJwtOptions {
  readonly clientId: string;
  readonly key: SigningKey;
  /**
   * The assertion's `aud`: the token endpoint URL being called (RFC 7523 §3 point 3 allows it, and
   * it is what most servers accept; oidc-provider accepts it or the issuer).
   */
  readonly audience: () => string;
  /** Wall clock of the assertion; it is checked against the AS's clock, so default system time. */
  readonly clock?: Clock;
}

/**
 * `private_key_jwt` (OIDC Core §9, RFC 7523 §2.2): a fresh signed assertion per token request with
 * iss = sub = client id, aud, a unique jti and a short exp.
 */
export function privateKeyJwt(options: PrivateKeyJwtOptions): ClientAuthenticator {
  const clock = options.clock ?? systemClock;
  const header = {
    alg: options.key.alg,
    typ: 'JWT',
    ...(options.key.kid === undefined ? {} : { kid: options.key.kid }),
  };
  return {
    method: 'private_key_jwt',
    async apply(form) {
      form.set('client_assertion', await signAssertion(options, header, clock));
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set('client_id', options.clientId);
    },
  };
}

function signAssertion(
  options: PrivateKeyJwtOptions,
  header: { alg: string; typ: string; kid?: string },
  clock: Clock,
): Promise<string> {
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(options.clientId)
    .setSubject(options.clientId)
    .setAudience(options.audience())
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + ASSERTION_TTL_SECONDS)
    .sign(options.key.key);
}
