import type { JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { jwtVerify } from 'jose/jwt/verify';
import type { Dispatcher } from 'undici';
import { ProxyError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import { type RemoteKeySet, remoteKeySets } from './remote-key-set.js';

export interface SubjectVerifierOptions {
  /** The JWKS URL: configured, else the one discovered (it may change on refresh). */
  readonly jwksUri: () => string | undefined;
  readonly issuer: string;
  readonly audience: string | readonly string[];
  /** Allow-list; a token signed with anything else is refused (RFC 8725 §3.1). */
  readonly algorithms: readonly string[];
  readonly clockToleranceSeconds: number;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly clock: Clock;
}

export interface SubjectVerifier {
  /** Verifies the user's token locally; 401 invalid_token on any failure, 503 when keys cannot be had. */
  verify(token: string): Promise<JWTPayload>;
  /** Loads the key set now (start-up); never rejects. */
  warm(): Promise<void>;
  /** undefined once a key set was loaded, else why not (for /readyz). */
  readinessReason(): string | undefined;
}

/** jose's error codes for a token that is simply not acceptable (as opposed to keys being unavailable). */
const KEYS_UNAVAILABLE = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JOSE_GENERIC', 'ERR_JWKS_INVALID']);

/**
 * Optional local check of the user's token before any exchange (docs/design.md "Request pipeline" step 3): signature from
 * the issuer's JWKS (jose remote set: cached, one pending fetch, refetch on unknown `kid` after a
 * cooldown), `iss`, `aud`, algorithm allow-list, `exp`/`nbf` with tolerance on the injected clock.
 */
export function createSubjectVerifier(options: SubjectVerifierOptions): SubjectVerifier {
  let loaded = false;
  let lastError = 'key set not loaded yet';

  const keySetFor = remoteKeySets({
    dispatcher: options.dispatcher,
    timeoutMs: options.timeoutMs,
    onFetched: (status) => {
      if (status === 200) loaded = true;
    },
  });

  const keySet = (): RemoteKeySet => {
    const url = options.jwksUri();
    if (url === undefined) {
      throw new ProxyError('temporarily_unavailable', 'the user token cannot be verified yet', {
        detail: 'no jwks_uri: discovery has not succeeded',
        retryAfterSeconds: 5,
      });
    }
    return keySetFor(url);
  };

  const audience = typeof options.audience === 'string' ? options.audience : [...options.audience];

  const verify = async (token: string): Promise<JWTPayload> => {
    const set = keySet();
    try {
      const { payload } = await jwtVerify(token, set, {
        issuer: options.issuer,
        audience,
        algorithms: [...options.algorithms],
        clockTolerance: options.clockToleranceSeconds,
        currentDate: new Date(options.clock.now()),
        requiredClaims: ['exp'],
      });
      return payload;
    } catch (err) {
      throw toProxyError(err);
    }
  };

  return {
    verify,
    async warm() {
      try {
        const set = keySet();
        await set.reload();
        lastError = '';
      } catch (err) {
        lastError = `cannot load ${options.jwksUri() ?? 'the key set'}: ${(err as Error).message}`;
      }
    },
    readinessReason: () => (loaded ? undefined : lastError),
  };
}

function toProxyError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = err instanceof errors.JOSEError ? err.code : undefined;
  if (code === undefined || KEYS_UNAVAILABLE.has(code)) {
    // The token may be fine: the key set could not be fetched. Not the user's fault, so not 401.
    return new ProxyError('temporarily_unavailable', 'the user token cannot be verified right now', {
      detail: `JWKS unavailable: ${(err as Error).message}`,
      cause: err,
      retryAfterSeconds: 5,
    });
  }
  const description = code === 'ERR_JWT_EXPIRED' ? 'the user token has expired' : 'the user token is not valid';
  return new ProxyError('invalid_token', description, {
    detail: `subject token verification failed: ${code}: ${(err as Error).message}`,
    cause: err,
  });
}
