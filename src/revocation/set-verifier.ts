import type { JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { jwtVerify } from 'jose/jwt/verify';
import { LRUCache } from 'lru-cache';
import type { Dispatcher } from 'undici';
import { type RemoteKeySet, remoteKeySets } from '../auth/remote-key-set.js';
import type { Clock } from '../pipeline/clock.js';
import { SetError } from './set-error.js';

export interface SetVerifierOptions {
  readonly issuer: string;
  readonly audience: string;
  /** The configured JWKS URI, or discovery (ssf-discovery.ts); called again after a failure. */
  readonly jwksUri: () => Promise<string>;
  readonly maxAgeSeconds: number;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** jtis remembered for replay detection (oldest dropped first). */
  readonly maxRemembered?: number;
}

/** A verified SET (RFC 8417 §2.2): `jti`, `iat` and a non-empty `events` object are present. */
export interface VerifiedSet {
  readonly payload: JWTPayload;
  readonly jti: string;
  readonly events: Record<string, Record<string, unknown>>;
}

export interface SetVerifier {
  /** Verifies one SET; throws SetError (400 with an RFC 8935 code, or 503 when keys cannot be had). */
  verify(jwt: string): Promise<VerifiedSet>;
  /** Records a processed SET's jti so a second delivery is refused as a replay. */
  remember(jti: string): void;
}

/** The CAEP interoperability profile signs with RS256; the others are listed for other transmitters. */
const ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const CLOCK_TOLERANCE_SECONDS = 30;
const MAX_SET_BYTES = 64 * 1024;

/**
 * Security Event Token verification (RFC 8417 §2.2, RFC 8935 §2.4): `typ: secevent+jwt`, the
 * signature against the transmitter's JWKS (jose remote set: cached, refetched on an unknown `kid`),
 * `iss`, `aud`, `iat` within `maxAgeSeconds`, and `jti` not seen before.
 */
export function createSetVerifier(options: SetVerifierOptions): SetVerifier {
  const seen = new LRUCache<string, true>({
    max: options.maxRemembered ?? 100_000,
    // Past the iat window a replay is refused by its age anyway.
    ttl: (options.maxAgeSeconds + CLOCK_TOLERANCE_SECONDS) * 1000,
    perf: { now: () => options.clock.now() },
  });

  const keySetFor = remoteKeySets({ dispatcher: options.dispatcher, timeoutMs: options.timeoutMs });

  const keySet = async (): Promise<RemoteKeySet> => {
    let url: string;
    try {
      url = await options.jwksUri();
    } catch (err) {
      throw unavailable(`SSF discovery failed: ${(err as Error).message}`, err);
    }
    return keySetFor(url);
  };

  return {
    async verify(jwt) {
      if (jwt.length > MAX_SET_BYTES || jwt.split('.').length !== 3) {
        throw new SetError('invalid_request', 'the body is not a signed SET (compact JWS)');
      }
      const set = await keySet();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(jwt, set, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'secevent+jwt',
          algorithms: ALGORITHMS,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          maxTokenAge: options.maxAgeSeconds,
          currentDate: new Date(options.clock.now()),
          requiredClaims: ['iat', 'jti', 'events'],
        }));
      } catch (err) {
        throw toSetError(err);
      }
      const { jti, events } = payload;
      if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) {
        throw new SetError('invalid_request', 'jti must be a non-empty string');
      }
      if (!isEvents(events)) throw new SetError('invalid_request', 'events must be an object of event objects');
      if (seen.has(jti))
        throw new SetError('invalid_request', 'this SET (jti) was already received', { duplicate: true });
      return { payload, jti, events };
    },
    remember(jti) {
      seen.set(jti, true);
    },
  };
}

function isEvents(value: unknown): value is Record<string, Record<string, unknown>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const entries = Object.values(value);
  return entries.length > 0 && entries.every((e) => e !== null && typeof e === 'object' && !Array.isArray(e));
}

function unavailable(detail: string, cause: unknown): SetError {
  // Not the SET's fault: a general HTTP error (RFC 8935 §2.3), so the transmitter retries.
  return new SetError('invalid_request', 'the transmitter keys cannot be loaded right now', {
    status: 503,
    retryAfterSeconds: 5,
    detail,
    cause,
  });
}

const KEYS_UNAVAILABLE = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JOSE_GENERIC', 'ERR_JWKS_INVALID']);
const KEY_PROBLEMS = new Set([
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_ALG_NOT_ALLOWED',
]);

/** jose errors → RFC 8935 §2.4 codes. */
function toSetError(err: unknown): SetError {
  if (err instanceof SetError) return err;
  const code = err instanceof errors.JOSEError ? err.code : undefined;
  const detail = `SET verification failed: ${code ?? 'error'}: ${(err as Error).message}`;
  if (code === undefined || KEYS_UNAVAILABLE.has(code)) return unavailable(detail, err);
  if (KEY_PROBLEMS.has(code))
    return new SetError('invalid_key', 'the SET signature does not verify with the transmitter keys', {
      detail,
      cause: err,
    });
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss')
      return new SetError('invalid_issuer', 'the SET issuer is not the configured transmitter', { detail, cause: err });
    if (err.claim === 'aud')
      return new SetError('invalid_audience', 'the SET audience is not this receiver', { detail, cause: err });
    if (err.claim === 'iat')
      return new SetError('invalid_request', 'the SET iat is outside the accepted window', { detail, cause: err });
    if (err.claim === 'typ')
      return new SetError('invalid_request', 'the SET typ header must be secevent+jwt', { detail, cause: err });
    return new SetError('invalid_request', `the SET claim ${err.claim} is not acceptable`, { detail, cause: err });
  }
  if (err instanceof errors.JWTExpired) {
    // maxTokenAge reports an old iat as expired too.
    const description = err.claim === 'iat' ? 'the SET iat is outside the accepted window' : 'the SET has expired';
    return new SetError('invalid_request', description, { detail, cause: err });
  }
  return new SetError('invalid_request', 'the body is not a valid SET', { detail, cause: err });
}
