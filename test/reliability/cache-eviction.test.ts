import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { get, startRig, tally, userTokens } from './harness.js';

const closers = useClosers();

// lru-cache aborts a pending fetch() when its entry is evicted; the requests waiting on that
// exchange must still be answered. Cache pressure may cost exchanges, never a request.
describe('token cache under pressure', () => {
  it('200 concurrent first requests of distinct users with maxEntries 50 all succeed', async () => {
    // The AS answers in 300 ms so that all 200 exchanges are in flight together, and evictions
    // happen while they wait.
    const rig = await startRig(closers, { asDelayMs: 300, config: { cache: { maxEntries: 50 } } });
    const users = await userTokens(rig.as, 200);
    const answers = await Promise.all(users.map((t) => get(rig, '/documents/a', t)));
    expect(tally(answers)).toEqual({ 200: 200 });
    // One exchange per user: an evicted exchange still serves the requests that waited for it.
    expect(rig.as.exchanges.filter((e) => e.outcome === 'issued')).toHaveLength(200);
    expect(rig.proxy.proxy.tokens.cache.size).toBeLessThanOrEqual(50);
  }, 30_000);
});
