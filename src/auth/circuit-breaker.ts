import { TokenExchangeError } from '../errors.js';
import type { Clock } from '../pipeline/clock.js';
import type { TokenExchangeClient } from './token-exchange.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failed attempts that open the circuit. */
  readonly failureThreshold: number;
  /** How long it stays open before one probe is let through. */
  readonly openMs: number;
  readonly clock: Clock;
  readonly onStateChange?: (state: CircuitState, detail: string) => void;
}

export interface CircuitBreaker {
  readonly state: CircuitState;
  /** Throws a 503 at once when the circuit is open (or a probe is already out). */
  before(): void;
  success(): void;
  failure(): void;
}

/** The breaker refused the call: the AS was not contacted (never retried, never counted). */
export class CircuitOpenError extends TokenExchangeError {
  constructor(state: CircuitState, retryAfterMs: number) {
    super('temporarily_unavailable', 'the authorization server is unavailable', 'unavailable', {
      detail: `circuit breaker ${state}: not calling the authorization server`,
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
    this.name = 'CircuitOpenError';
  }
}

/** A failure that says the AS is not answering (network error, timeout, 5xx); 4xx means it is up. */
export function isUnavailable(err: unknown): boolean {
  return err instanceof TokenExchangeError && err.outcome === 'unavailable' && !(err instanceof CircuitOpenError);
}

/**
 * Circuit breaker for the authorization server: after `failureThreshold` consecutive failures the
 * proxy answers 503 with Retry-After at once instead of queueing requests on a dead AS. After
 * `openMs` one request is let through (half-open); its success closes the circuit, its failure
 * opens it again.
 */
export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  let state: CircuitState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probing = false;

  const set = (next: CircuitState, detail: string) => {
    if (next === state) return;
    state = next;
    options.onStateChange?.(next, detail);
  };

  const refuse = (retryAfterMs: number): never => {
    throw new CircuitOpenError(state, retryAfterMs);
  };

  return {
    get state() {
      return state;
    },
    before() {
      if (state === 'closed') return;
      const left = openedAt + options.openMs - options.clock.now();
      if (state === 'open') {
        if (left > 0) refuse(left);
        set('half_open', 'open period over; probing');
      }
      if (probing) refuse(1000);
      probing = true;
    },
    success() {
      failures = 0;
      probing = false;
      set('closed', 'the authorization server answered');
    },
    failure() {
      probing = false;
      failures += 1;
      if (state === 'half_open' || failures >= options.failureThreshold) {
        openedAt = options.clock.now();
        set('open', state === 'half_open' ? 'the probe failed' : `${failures} consecutive failures`);
      }
    },
  };
}

/** Wraps a client: every attempt goes through the breaker. */
export function withCircuitBreaker(client: TokenExchangeClient, breaker: CircuitBreaker): TokenExchangeClient {
  return {
    async exchange(req, signal) {
      breaker.before();
      try {
        const issued = await client.exchange(req, signal);
        breaker.success();
        return issued;
      } catch (err) {
        if (isUnavailable(err)) breaker.failure();
        else breaker.success();
        throw err;
      }
    },
  };
}
