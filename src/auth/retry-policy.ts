import { isUnavailable } from './circuit-breaker.js';
import type { TokenExchangeClient } from './token-exchange.js';

export interface RetryPolicyOptions {
  /** 1 = no retry. */
  readonly maxAttempts: number;
  /** Total time for one exchange: attempts and backoff included. */
  readonly budgetMs: number;
  /** Cap of one attempt (authorizationServer.timeoutMs); the last attempt gets what is left of the budget. */
  readonly attemptTimeoutMs: number;
  /** Base of the full-jitter exponential backoff: delay = random() × backoffMs × 2^(attempt-1). */
  readonly backoffMs: number;
  /** Monotonic milliseconds (elapsed time, not wall time). Default performance.now. */
  readonly now?: () => number;
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** An attempt shorter than this is not worth starting. */
const MIN_ATTEMPT_MS = 50;

const defaultSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/** How long to wait before attempt `attempt + 1` (full jitter: spreads retries of many pods). */
export function backoffDelay(attempt: number, backoffMs: number, random: () => number): number {
  return Math.floor(random() * backoffMs * 2 ** (attempt - 1));
}

/**
 * Retries an exchange only when the AS did not answer usefully: network error, timeout, 5xx
 * (outcome `unavailable`). A 4xx is an answer and is never retried, nor is a refusal by the
 * circuit breaker. Every attempt runs under min(attemptTimeoutMs, what is left of the budget).
 */
export function withRetries(client: TokenExchangeClient, options: RetryPolicyOptions): TokenExchangeClient {
  const now = options.now ?? (() => performance.now());
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  return {
    async exchange(req, signal) {
      const deadline = now() + options.budgetMs;
      for (let attempt = 1; ; attempt++) {
        const left = deadline - now();
        const timeout = AbortSignal.timeout(Math.max(1, Math.floor(Math.min(options.attemptTimeoutMs, left))));
        try {
          return await client.exchange(req, signal ? AbortSignal.any([signal, timeout]) : timeout);
        } catch (err) {
          if (!isUnavailable(err) || attempt >= options.maxAttempts || signal?.aborted) throw err;
          const delay = backoffDelay(attempt, options.backoffMs, random);
          if (deadline - now() - delay < MIN_ATTEMPT_MS) throw err;
          await sleep(delay);
        }
      }
    },
  };
}
