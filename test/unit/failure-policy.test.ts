import { describe, expect, it } from 'vitest';
import { CircuitOpenError, createCircuitBreaker, withCircuitBreaker } from '../../src/auth/circuit-breaker.js';
import { withInvalidGrantMemory } from '../../src/auth/invalid-grant-memory.js';
import { backoffDelay, withRetries } from '../../src/auth/retry-policy.js';
import type { ExchangeRequest, IssuedToken, TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenExchangeError } from '../../src/errors.js';
import { manualClock } from '../helpers/start-proxy.js';

const REQ: ExchangeRequest = {
  subjectToken: 'subject-a',
  subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  scopes: [],
};
const OK: IssuedToken = {
  accessToken: 't',
  issuedTokenType: REQ.requestedTokenType,
  tokenType: 'Bearer',
  expiresIn: 60,
  scopes: [],
};
const unavailable = () => new TokenExchangeError('temporarily_unavailable', 'down', 'unavailable');
const invalidGrant = () => new TokenExchangeError('invalid_token', 'no', 'invalid_grant');
const refused = () => new TokenExchangeError('bad_gateway', 'no', 'error');

/** A client that answers from a script, one entry per call, and counts calls. */
function scripted(script: Array<'ok' | (() => Error)>): TokenExchangeClient & { calls: number } {
  const c = {
    calls: 0,
    async exchange() {
      const step = script[Math.min(c.calls++, script.length - 1)]!;
      if (step === 'ok') return OK;
      throw step();
    },
  };
  return c;
}

/** Fake elapsed time: sleeping advances it. */
function fakeTime() {
  let t = 0;
  const advance = (ms: number): void => {
    t += ms;
  };
  return { now: () => t, sleep: async (ms: number) => advance(ms), advance };
}

describe('retry policy', () => {
  it('retries network errors / 5xx up to maxAttempts', async () => {
    const time = fakeTime();
    const inner = scripted([unavailable, unavailable, 'ok']);
    const client = withRetries(inner, {
      maxAttempts: 3,
      budgetMs: 10_000,
      attemptTimeoutMs: 1000,
      backoffMs: 100,
      random: () => 1,
      ...time,
    });
    await expect(client.exchange(REQ)).resolves.toBe(OK);
    expect(inner.calls).toBe(3);
    expect(time.now()).toBe(100 + 200); // full jitter at random()=1: 100, then 200
  });

  it('never retries a 4xx answer', async () => {
    for (const err of [invalidGrant, refused]) {
      const inner = scripted([err, 'ok']);
      const client = withRetries(inner, {
        maxAttempts: 5,
        budgetMs: 10_000,
        attemptTimeoutMs: 1000,
        backoffMs: 0,
        ...fakeTime(),
      });
      await expect(client.exchange(REQ)).rejects.toBeInstanceOf(TokenExchangeError);
      expect(inner.calls).toBe(1);
    }
  });

  it('never retries a circuit-breaker refusal', async () => {
    const inner = scripted([() => new CircuitOpenError('open', 5000), 'ok']);
    const client = withRetries(inner, {
      maxAttempts: 5,
      budgetMs: 10_000,
      attemptTimeoutMs: 1000,
      backoffMs: 0,
      ...fakeTime(),
    });
    await expect(client.exchange(REQ)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(inner.calls).toBe(1);
  });

  it('stops when the next backoff would not leave room for an attempt within the budget', async () => {
    const time = fakeTime();
    const inner = scripted([unavailable]);
    const slow: TokenExchangeClient = {
      exchange: async (r, s) => {
        time.advance(400); // each attempt takes 400 ms
        return inner.exchange(r, s);
      },
    };
    const client = withRetries(slow, {
      maxAttempts: 10,
      budgetMs: 1000,
      attemptTimeoutMs: 400,
      backoffMs: 100,
      random: () => 1,
      ...time,
    });
    await expect(client.exchange(REQ)).rejects.toThrow('down');
    expect(inner.calls).toBe(2); // 400 + 100 + 400 = 900; a third needs 200 more backoff
    expect(time.now()).toBeLessThanOrEqual(1000);
  });

  it('full jitter stays within [0, backoff × 2^(n-1))', () => {
    expect(backoffDelay(1, 100, () => 0)).toBe(0);
    expect(backoffDelay(3, 100, () => 0.999)).toBeLessThan(400);
  });
});

describe('circuit breaker', () => {
  it('opens after N consecutive failures, refuses with Retry-After, half-opens one probe, closes on success', async () => {
    const clock = manualClock(0);
    const states: string[] = [];
    const breaker = createCircuitBreaker({
      failureThreshold: 3,
      openMs: 10_000,
      clock,
      onStateChange: (s) => states.push(s),
    });
    const inner = scripted([unavailable, unavailable, unavailable, 'ok']);
    const client = withCircuitBreaker(inner, breaker);
    for (let i = 0; i < 3; i++) await expect(client.exchange(REQ)).rejects.toThrow();
    expect(breaker.state).toBe('open');
    const refusal = await client.exchange(REQ).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(CircuitOpenError);
    expect((refusal as CircuitOpenError).retryAfterSeconds).toBe(10);
    expect(inner.calls).toBe(3);
    clock.advance(10_000);
    await expect(client.exchange(REQ)).resolves.toBe(OK);
    expect(breaker.state).toBe('closed');
    expect(states).toEqual(['open', 'half_open', 'closed']);
  });

  it('lets only one probe through while half-open', async () => {
    const clock = manualClock(0);
    const breaker = createCircuitBreaker({ failureThreshold: 1, openMs: 1000, clock });
    breaker.failure();
    clock.advance(1000);
    breaker.before(); // the probe
    expect(() => breaker.before()).toThrow(CircuitOpenError);
    breaker.failure();
    expect(breaker.state).toBe('open');
  });

  it('a 4xx answer counts as the AS being up and resets the failure count', async () => {
    const breaker = createCircuitBreaker({ failureThreshold: 2, openMs: 1000, clock: manualClock(0) });
    const client = withCircuitBreaker(scripted([unavailable, refused, unavailable]), breaker);
    for (let i = 0; i < 3; i++) await client.exchange(REQ).catch(() => undefined);
    expect(breaker.state).toBe('closed');
  });
});

describe('invalid_grant memory', () => {
  it('answers invalid_grant again without calling the AS within the window, per subject token', async () => {
    const clock = manualClock(0);
    const inner = scripted([invalidGrant]);
    const client = withInvalidGrantMemory(inner, { seconds: () => 5, clock });
    await expect(client.exchange(REQ)).rejects.toMatchObject({ outcome: 'invalid_grant' });
    await expect(client.exchange(REQ)).rejects.toMatchObject({ outcome: 'invalid_grant', status: 401 });
    expect(inner.calls).toBe(1);
    await client.exchange({ ...REQ, subjectToken: 'subject-b' }).catch(() => undefined);
    expect(inner.calls).toBe(2);
    clock.advance(5_000);
    await client.exchange(REQ).catch(() => undefined);
    expect(inner.calls).toBe(3);
  });

  it('0 seconds turns it off; other errors are never remembered', async () => {
    const inner = scripted([invalidGrant]);
    const off = withInvalidGrantMemory(inner, { seconds: () => 0, clock: manualClock(0) });
    for (let i = 0; i < 3; i++) await off.exchange(REQ).catch(() => undefined);
    expect(inner.calls).toBe(3);
    const down = scripted([unavailable]);
    const client = withInvalidGrantMemory(down, { seconds: () => 5, clock: manualClock(0) });
    for (let i = 0; i < 3; i++) await client.exchange(REQ).catch(() => undefined);
    expect(down.calls).toBe(3);
  });
});
