import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { get, startRig, tally, upstreamSub, userTokens } from './harness.js';

const closers = useClosers();

describe('cross-user isolation under concurrency', () => {
  it('80 users × 4 interleaved concurrent requests: every delegated token at the upstream is the sender’s', async () => {
    const rig = await startRig(closers, { asDelayMs: 20, config: { cache: { maxEntries: 50 } } });
    const USERS = 80;
    const users = await userTokens(rig.as, USERS);
    // Interleaved rounds, all in flight together: first lookups coalesce, later ones hit or (cache
    // smaller than the user count) exchange again after an eviction.
    const jobs = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < USERS; i++) jobs.push(get(rig, `/documents/user-${i}/r${round}`, users[i]));
    }
    const answers = await Promise.all(jobs);
    expect(tally(answers)).toEqual({ 200: USERS * 4 });
    expect(rig.upstream.requests).toHaveLength(USERS * 4);
    const mismatches: string[] = [];
    rig.upstream.requests.forEach((r, i) => {
      const sender = /^\/api\/(user-\d+)\//.exec(r.url)?.[1];
      const sub = upstreamSub(rig.upstream, i);
      if (sender === undefined || sub !== sender) mismatches.push(`${r.url} carried sub ${String(sub)}`);
    });
    expect(mismatches).toEqual([]);
  }, 60_000);
});
