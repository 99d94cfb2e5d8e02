import { TokenExchangeError } from '../errors.js';
import type { TokenExchangeClient } from './token-exchange.js';

export interface ExchangeQueueOptions {
  /** Exchanges sent to the AS at the same time (authorizationServer.maxConcurrentExchanges). */
  readonly maxConcurrent: number;
  /** Exchanges that may wait for a slot; beyond that they answer 503 at once. */
  readonly maxQueued: number;
  /** Longest wait for a slot; then 503. */
  readonly timeoutMs: number;
  /** Called when an exchange is refused without reaching the AS (for a log line). */
  readonly onReject?: (reason: 'full' | 'timeout', queued: number) => void;
}

export interface ExchangeQueue extends TokenExchangeClient {
  /** Exchanges holding a slot (sent to the AS or between their retries). */
  readonly inFlight: number;
  /** Exchanges waiting for a slot. */
  readonly queued: number;
}

/** The proxy had no slot for the exchange: the AS was not contacted (never counted by the breaker). */
export class ExchangeQueueError extends TokenExchangeError {
  constructor(reason: 'full' | 'timeout', detail: string) {
    super('temporarily_unavailable', 'too many token exchanges are in progress', 'unavailable', {
      detail,
      retryAfterSeconds: 1,
    });
    this.name = 'ExchangeQueueError';
    this.reason = reason;
  }

  readonly reason: 'full' | 'timeout';
}

interface Waiter {
  readonly grant: () => void;
}

/**
 * Bounds the exchanges in flight at the AS with a semaphore and a bounded FIFO queue
 * (docs/operations.md "Reliability"). It wraps the retry policy, so the per-attempt timeout and the circuit breaker
 * only ever see time the AS itself took: waiting here is the proxy's own queue, not an AS failure.
 */
export function withExchangeQueue(client: TokenExchangeClient, options: ExchangeQueueOptions): ExchangeQueue {
  let inFlight = 0;
  const waiting: Waiter[] = [];

  const release = (): void => {
    const next = waiting.shift();
    if (next) next.grant();
    else inFlight -= 1;
  };

  const acquire = (signal: AbortSignal | undefined): Promise<void> => {
    if (inFlight < options.maxConcurrent && waiting.length === 0) {
      inFlight += 1;
      return Promise.resolve();
    }
    if (waiting.length >= options.maxQueued) {
      options.onReject?.('full', waiting.length);
      return Promise.reject(new ExchangeQueueError('full', `exchange queue full (${waiting.length} waiting)`));
    }
    return new Promise<void>((resolve, reject) => {
      const leave = (err: unknown): void => {
        const i = waiting.indexOf(waiter);
        if (i >= 0) waiting.splice(i, 1);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      };
      const onAbort = (): void => leave(signal?.reason);
      const waiter: Waiter = {
        // The slot passes straight from the finished exchange to this one (inFlight unchanged).
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        options.onReject?.('timeout', waiting.length);
        leave(new ExchangeQueueError('timeout', `no exchange slot within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      waiting.push(waiter);
    });
  };

  return {
    get inFlight() {
      return inFlight;
    },
    get queued() {
      return waiting.length;
    },
    async exchange(req, signal) {
      await acquire(signal);
      try {
        return await client.exchange(req, signal);
      } finally {
        release();
      }
    },
  };
}
