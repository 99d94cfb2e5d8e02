import { afterEach, describe, expect, it, vi } from 'vitest';
import { createCircuitBreaker, withCircuitBreaker } from '../../src/auth/circuit-breaker.js';
import { ExchangeQueueError, withExchangeQueue } from '../../src/auth/exchange-queue.js';
import type { ExchangeRequest, IssuedToken, TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { manualClock } from '../helpers/start-proxy.js';

const REQ: ExchangeRequest = { subjectToken: 's', subjectTokenType: 't', requestedTokenType: 't', scopes: [] };
const ISSUED: IssuedToken = { accessToken: 'a', issuedTokenType: 't', tokenType: 'Bearer', expiresIn: 60, scopes: [] };

/** An AS client whose answers the test releases one by one, in order. */
function heldClient() {
  const held: Array<() => void> = [];
  const client: TokenExchangeClient = {
    exchange: () =>
      new Promise<IssuedToken>((resolve) => {
        held.push(() => resolve(ISSUED));
      }),
  };
  return { client, held };
}

const flush = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('withExchangeQueue', () => {
  it('sends at most maxConcurrent exchanges and passes slots on in arrival order', async () => {
    const { client, held } = heldClient();
    const queue = withExchangeQueue(client, { maxConcurrent: 2, maxQueued: 10, timeoutMs: 60_000 });
    const order: number[] = [];
    const all = [0, 1, 2, 3, 4].map((i) => queue.exchange(REQ).then(() => order.push(i)));
    await flush();
    expect(held).toHaveLength(2);
    expect([queue.inFlight, queue.queued]).toEqual([2, 3]);
    for (let i = 0; i < 5; i++) {
      held[i]?.();
      await flush();
    }
    await Promise.all(all);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect([queue.inFlight, queue.queued]).toEqual([0, 0]);
  });

  it('refuses at once when the queue is full, without reaching the AS or the breaker', async () => {
    const { client, held } = heldClient();
    const breaker = createCircuitBreaker({ failureThreshold: 1, openMs: 10_000, clock: manualClock() });
    const queue = withExchangeQueue(withCircuitBreaker(client, breaker), {
      maxConcurrent: 1,
      maxQueued: 1,
      timeoutMs: 60_000,
    });
    const first = queue.exchange(REQ);
    const second = queue.exchange(REQ);
    const errors = await Promise.all([1, 2, 3].map(() => queue.exchange(REQ).catch((e: unknown) => e)));
    for (const e of errors) {
      expect(e).toBeInstanceOf(ExchangeQueueError);
      expect(e).toMatchObject({ code: 'temporarily_unavailable', status: 503, retryAfterSeconds: 1, reason: 'full' });
    }
    expect(breaker.state).toBe('closed');
    held[0]?.();
    await first;
    await flush();
    held[1]?.();
    await second;
    expect(held).toHaveLength(2);
  });

  it('a wait longer than timeoutMs answers 503 and frees its place', async () => {
    vi.useFakeTimers();
    const { client, held } = heldClient();
    const queue = withExchangeQueue(client, { maxConcurrent: 1, maxQueued: 5, timeoutMs: 1_000 });
    const first = queue.exchange(REQ);
    const waiting = queue.exchange(REQ).catch((e: unknown) => e);
    expect(queue.queued).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await waiting).toMatchObject({ reason: 'timeout', code: 'temporarily_unavailable' });
    expect(queue.queued).toBe(0);
    held[0]?.();
    await first;
    expect(queue.inFlight).toBe(0);
  });

  it('a caller that gives up leaves the queue', async () => {
    const { client, held } = heldClient();
    const queue = withExchangeQueue(client, { maxConcurrent: 1, maxQueued: 5, timeoutMs: 60_000 });
    const first = queue.exchange(REQ);
    const ac = new AbortController();
    const waiting = queue.exchange(REQ, ac.signal).catch((e: unknown) => e);
    ac.abort(new Error('client left'));
    expect(await waiting).toMatchObject({ message: 'client left' });
    expect(queue.queued).toBe(0);
    held[0]?.();
    await first;
    expect(held).toHaveLength(1);
    expect(queue.inFlight).toBe(0);
  });
});
