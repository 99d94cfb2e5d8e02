import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { TokenExchangeError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import type { TokenExchangeClient } from './token-exchange.js';

export interface InvalidGrantMemoryOptions {
  /** Seconds an `invalid_grant` is remembered (cache.invalidGrantMemorySeconds, live); 0 = off. */
  readonly seconds: () => number;
  readonly clock: Clock;
  readonly maxEntries?: number;
}

/**
 * Remembers the AS's `invalid_grant` per subject token hash for a few seconds (docs/design.md "Cache"),
 * so an agent retrying with a revoked or expired user token does not hammer the AS: within the
 * window the same 401 is answered without a call. Keyed by the token's hash, never the token.
 */
export function withInvalidGrantMemory(
  client: TokenExchangeClient,
  options: InvalidGrantMemoryOptions,
): TokenExchangeClient {
  // Value: until when (epoch ms) the answer is remembered. Bounded; old entries fall out LRU.
  const remembered = new LRUCache<string, number>({ max: options.maxEntries ?? 10_000 });
  return {
    async exchange(req, signal) {
      const seconds = options.seconds();
      const key = seconds > 0 ? hash('sha256', req.subjectToken, 'base64url') : undefined;
      const until = key === undefined ? undefined : remembered.get(key);
      if (key !== undefined && until !== undefined) {
        if (options.clock.now() < until) {
          throw new TokenExchangeError(
            'invalid_token',
            'the user token was not accepted for delegation',
            'invalid_grant',
            {
              detail:
                'the authorization server answered invalid_grant for this subject token moments ago (not asked again)',
              asError: 'invalid_grant',
            },
          );
        }
        remembered.delete(key);
      }
      try {
        return await client.exchange(req, signal);
      } catch (err) {
        if (key !== undefined && err instanceof TokenExchangeError && err.outcome === 'invalid_grant') {
          remembered.set(key, options.clock.now() + seconds * 1000);
        }
        throw err;
      }
    },
  };
}
