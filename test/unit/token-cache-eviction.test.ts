import { describe, expect, it } from 'vitest';
import { type CachedToken, TokenCache, type TokenLoad } from '../../src/auth/token-cache.js';
import { manualClock } from '../helpers/start-proxy.js';

/** An exchange the test finishes by hand. */
function pendingExchange(clock: { now(): number }, name: string) {
  let finish!: () => void;
  let started = 0;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const load: TokenLoad = {
    load: async (): Promise<CachedToken> => {
      started += 1;
      await done;
      const now = clock.now();
      return { accessToken: name, scopes: [], expiresAt: now + 300_000, refreshAt: now + 270_000 };
    },
    onBackgroundError: () => {},
  };
  return { load, finish, started: () => started };
}

// lru-cache aborts a pending fetch() when the size bound evicts its entry.
describe('TokenCache eviction of an exchange in flight', () => {
  it('the requests waiting for an evicted exchange still get its token', async () => {
    const clock = manualClock(1_000_000);
    const cache = new TokenCache({ maxEntries: 2, skewMs: 5_000, clock });
    const a = pendingExchange(clock, 'token-a');
    const waiting = [cache.get('a', a.load), cache.get('a', a.load)];
    // Two more keys push `a` out while its exchange is still running.
    const others = ['b', 'c'].map((k) => {
      const x = pendingExchange(clock, `token-${k}`);
      x.finish();
      return cache.get(k, x.load);
    });
    await Promise.all(others);
    a.finish();
    const results = await Promise.all(waiting);
    expect(results.map((r) => r.token.accessToken)).toEqual(['token-a', 'token-a']);
    expect(a.started()).toBe(1);
    expect(cache.size).toBeLessThanOrEqual(2);
  });

  it('an evicted exchange is not written back over the entries that replaced it', async () => {
    const clock = manualClock(1_000_000);
    const cache = new TokenCache({ maxEntries: 1, skewMs: 5_000, clock });
    const a = pendingExchange(clock, 'token-a');
    const waiting = cache.get('a', a.load);
    const b = pendingExchange(clock, 'token-b');
    b.finish();
    await cache.get('b', b.load);
    a.finish();
    await waiting;
    expect(cache.fresh('b')?.accessToken).toBe('token-b');
    expect(cache.fresh('a')).toBeUndefined();
  });

  it('clearing the cache on purpose still fails the requests waiting on an exchange', async () => {
    const clock = manualClock(1_000_000);
    const cache = new TokenCache({ maxEntries: 10, skewMs: 5_000, clock });
    const a = pendingExchange(clock, 'token-a');
    const waiting = cache.get('a', a.load);
    cache.clear();
    await expect(waiting).rejects.toThrow('deleted');
    a.finish();
  });
});
