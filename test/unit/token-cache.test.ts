import { describe, expect, it } from 'vitest';
import { type CachedToken, type RefreshTrigger, TokenCache, tokenTimes } from '../../src/auth/token-cache.js';
import { TokenExchangeError } from '../../src/errors.js';
import { manualClock } from '../helpers/start-proxy.js';

const SKEW_MS = 5_000;

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A loader that counts exchanges and issues 300 s tokens refreshed 30 s ahead. */
function loader(clock: { now(): number }, lifetimeMs = 300_000, aheadMs = 30_000) {
  const calls: Array<RefreshTrigger | undefined> = [];
  const errors: unknown[] = [];
  let n = 0;
  return {
    calls,
    errors,
    load: async (trigger: RefreshTrigger | undefined): Promise<CachedToken> => {
      calls.push(trigger);
      n += 1;
      const now = clock.now();
      return { accessToken: `t${n}`, scopes: [], expiresAt: now + lifetimeMs, refreshAt: now + lifetimeMs - aheadMs };
    },
    onBackgroundError: (e: unknown) => errors.push(e),
  };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('TokenCache', () => {
  it('serves a cached token as a hit without a second exchange', async () => {
    const clock = manualClock(1_000_000);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    expect((await cache.get('k', l)).result).toBe('miss');
    clock.advance(60_000);
    const second = await cache.get('k', l);
    expect(second.result).toBe('hit');
    expect(second.token.accessToken).toBe('t1');
    expect(l.calls).toEqual([undefined]);
  });

  it('coalesces concurrent first lookups into one exchange', async () => {
    const clock = manualClock();
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.get('k', l)));
    expect(l.calls).toHaveLength(1);
    expect(results.filter((r) => r.result === 'miss')).toHaveLength(1);
    expect(results.filter((r) => r.result === 'coalesced')).toHaveLength(199);
    expect(new Set(results.map((r) => r.token.accessToken))).toEqual(new Set(['t1']));
  });

  it('inside the refresh window serves the old token at once and runs exactly one background exchange', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    await cache.get('k', l);
    clock.advance(280_000); // 20 s left: inside the 30 s refresh window
    const gate = deferred<void>();
    const slow = {
      ...l,
      load: async (trigger: RefreshTrigger | undefined) => {
        await gate.promise;
        return l.load(trigger);
      },
    };
    const during = await Promise.all(Array.from({ length: 50 }, () => cache.get('k', slow)));
    // Nobody waited for the refresh: all 50 got the old token immediately.
    expect(during.every((r) => r.token.accessToken === 't1' && r.result === 'hit')).toBe(true);
    gate.resolve();
    await flush();
    await flush();
    expect(l.calls).toEqual([undefined, 'ahead']);
    const after = await cache.get('k', l);
    expect(after.token.accessToken).toBe('t2');
    expect(l.calls).toHaveLength(2);
  });

  it('never serves a token past its expiry minus skew: the request waits for a new exchange', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    await cache.get('k', l);
    clock.advance(296_000); // 4 s left < 5 s skew
    const r = await cache.get('k', l);
    expect(r.token.accessToken).toBe('t2');
    expect(r.result).toBe('miss');
    expect(l.calls).toEqual([undefined, 'expired']);
    expect(cache.usable(r.token)).toBe(true);
  });

  it('concurrent lookups of an expired token share one exchange and none gets the expired token', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    await cache.get('k', l);
    clock.advance(400_000);
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.get('k', l)));
    expect(results.every((r) => r.token.accessToken === 't2')).toBe(true);
    expect(l.calls).toEqual([undefined, 'expired']);
  });

  it('a failed background refresh keeps the still-valid token and backs off', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock, refreshRetryMs: 5_000 });
    const l = loader(clock);
    await cache.get('k', l);
    clock.advance(280_000);
    let failures = 0;
    const failing = {
      ...l,
      load: async () => {
        failures += 1;
        throw new Error('AS down');
      },
    };
    expect((await cache.get('k', failing)).token.accessToken).toBe('t1');
    await flush();
    expect(failures).toBe(1);
    expect(l.errors).toHaveLength(1);
    // Within the back-off no new exchange is attempted.
    clock.advance(1_000);
    expect((await cache.get('k', failing)).token.accessToken).toBe('t1');
    await flush();
    expect(failures).toBe(1);
    clock.advance(5_000);
    expect((await cache.get('k', failing)).token.accessToken).toBe('t1');
    await flush();
    expect(failures).toBe(2);
  });

  it('a token served before a failed background refresh can still be invalidated after it', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock, refreshRetryMs: 5_000 });
    const l = loader(clock);
    const served = (await cache.get('k', l)).token;
    clock.advance(280_000);
    const failing = { ...l, load: async () => Promise.reject(new Error('AS down')) };
    expect((await cache.get('k', failing)).token.accessToken).toBe('t1');
    await flush();
    // Within the back-off the hot path serves it, and the upstream refusing it drops it.
    expect(cache.fresh('k')?.accessToken).toBe('t1');
    cache.invalidate('k', served);
    expect(cache.has('k')).toBe(false);
    expect((await cache.get('k', l)).token.accessToken).toBe('t2');
    expect(l.calls).toEqual([undefined, 'invalidated']);
  });

  it('invalid_grant during a refresh drops the old token: a revoked user gets nothing more', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({
      maxEntries: 10,
      skewMs: SKEW_MS,
      clock,
      isFatal: (e) => e instanceof TokenExchangeError && e.outcome === 'invalid_grant',
    });
    const l = loader(clock);
    await cache.get('k', l);
    clock.advance(280_000);
    const revoked = {
      ...l,
      load: async () => {
        throw new TokenExchangeError('invalid_token', 'revoked', 'invalid_grant');
      },
    };
    await cache.get('k', revoked); // served the old token, refresh fails fatally
    await flush();
    await expect(cache.get('k', revoked)).rejects.toMatchObject({ outcome: 'invalid_grant' });
  });

  it('a failed first exchange is not cached', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    await expect(cache.get('k', { ...l, load: async () => Promise.reject(new Error('boom')) })).rejects.toThrow('boom');
    expect(cache.size).toBe(0);
    expect((await cache.get('k', l)).result).toBe('miss');
  });

  it('holds at most maxEntries, evicting the least recently used', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 3, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    for (const k of ['a', 'b', 'c']) await cache.get(k, l);
    await cache.get('a', l); // a is now most recent
    await cache.get('d', l); // evicts b
    expect(cache.size).toBe(3);
    expect(l.calls).toHaveLength(4);
    expect((await cache.get('a', l)).result).toBe('hit');
    expect((await cache.get('b', l)).result).toBe('miss');
  });

  it('sweep removes only expired entries', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    await cache.get('short', loader(clock, 60_000, 10_000));
    await cache.get('long', loader(clock));
    clock.advance(120_000);
    expect(cache.sweep()).toBe(1);
    expect(cache.size).toBe(1);
  });

  it('invalidate drops the entry and the next exchange is triggered as invalidated', async () => {
    const clock = manualClock(0);
    const cache = new TokenCache({ maxEntries: 10, skewMs: SKEW_MS, clock });
    const l = loader(clock);
    const first = await cache.get('k', l);
    cache.invalidate('k', first.token);
    const second = await cache.get('k', l);
    expect(second.token.accessToken).toBe('t2');
    expect(l.calls).toEqual([undefined, 'invalidated']);
  });
});

describe('tokenTimes', () => {
  const base = { now: 0, maxTtlSeconds: 300, refreshAheadSeconds: 30, subjectExpiresAt: undefined };

  it('uses expires_in and refreshes 30 s ahead', () => {
    expect(tokenTimes({ ...base, expiresInSeconds: 120 })).toEqual({
      expiresAt: 120_000,
      refreshAt: 90_000,
      capped: false,
      cappedBySubject: false,
    });
  });

  it('caps at maxTtlSeconds and says so', () => {
    const t = tokenTimes({ ...base, expiresInSeconds: 3600 });
    expect(t.expiresAt).toBe(300_000);
    expect(t.capped).toBe(true);
  });

  it('never outlives the subject token and does not refresh ahead then', () => {
    const t = tokenTimes({ ...base, expiresInSeconds: 300, subjectExpiresAt: 100_000 });
    expect(t).toEqual({ expiresAt: 100_000, refreshAt: 100_000, capped: false, cappedBySubject: true });
  });

  it('without expires_in assumes maxTtlSeconds', () => {
    expect(tokenTimes({ ...base, expiresInSeconds: undefined }).expiresAt).toBe(300_000);
  });

  it('short lifetimes refresh at half-life rather than immediately', () => {
    expect(tokenTimes({ ...base, expiresInSeconds: 40 }).refreshAt).toBe(20_000);
  });

  it('refreshes min(refreshAheadSeconds, lifetime / 2) before expiry: a 36 s token with a 30 s window after 18 s (docs/token-cache.md)', () => {
    expect(tokenTimes({ ...base, expiresInSeconds: 36 })).toMatchObject({ expiresAt: 36_000, refreshAt: 18_000 });
    expect(tokenTimes({ ...base, expiresInSeconds: 61 }).refreshAt).toBe(31_000);
  });

  it('no refresh ahead when the AS already bounded the token to within refreshAheadSeconds of the user token exp', () => {
    expect(tokenTimes({ ...base, expiresInSeconds: 90, subjectExpiresAt: 100_000 })).toEqual({
      expiresAt: 90_000,
      refreshAt: 90_000,
      capped: false,
      cappedBySubject: false,
    });
    expect(tokenTimes({ ...base, expiresInSeconds: 90, subjectExpiresAt: 120_000 }).refreshAt).toBe(60_000);
  });
});
