import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { push, SESSION_REVOKED } from '../helpers/ssf-transmitter.js';
import { admin, type FleetSetup, REDIS_SERVER, readyz, setupFleet, status, within } from './fleet-setup.js';
import { SSF_AUTHORIZATION } from './revocation-setup.js';

// Three proxies as real processes sharing one real redis-server (docs/fleet.md "Revocations").
describe.skipIf(REDIS_SERVER === undefined)('fleet: revocations reach every proxy', () => {
  let f: FleetSetup;
  let a: ProxyProcess;
  let b: ProxyProcess;
  let c: ProxyProcess;

  beforeAll(async () => {
    f = await setupFleet();
    [a, b, c] = await Promise.all([f.start('pod-a'), f.start('pod-b'), f.start('pod-c')]);
  }, 60_000);

  afterAll(async () => {
    await f?.close();
  });

  it('is ready once the revocation list is read, and says so in /readyz', async () => {
    for (const p of [a, b, c]) expect((await readyz(p.adminUrl)).status).toBe(200);
    expect(f.redis.cli('PUBSUB', 'NUMSUB', 'test-fleet:events')).toMatch(/test-fleet:events\s+3/);
  });

  it('an SSF push to A makes B and C refuse the user within 1 s, evicting their cached tokens; C restarted still refuses; DELETE lifts it everywhere', async () => {
    const alice = await f.as.userToken('alice', ['documents:read']);
    const bob = await f.as.userToken('bob', ['documents:read']);
    // Cached delegated tokens on every pod.
    for (const p of [a, b, c]) {
      expect(await status(`${p.url}/docs/x`, alice)).toBe(200);
      expect(await status(`${p.url}/docs/x`, bob)).toBe(200);
    }
    const set = await f.tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: f.as.issuer, sub: 'alice' });
    const pushed = await push(a.adminUrl, set, SSF_AUTHORIZATION);
    expect(pushed.status).toBe(202);
    const accepted = performance.now();
    // Applied on A before the 202.
    expect(await status(`${a.url}/docs/x`, alice)).toBe(401);
    const refusedB = within(1_000, async () => (await status(`${b.url}/docs/x`, alice)) === 401);
    const refusedC = within(1_000, async () => (await status(`${c.url}/docs/x`, alice)) === 401);
    await Promise.all([refusedB, refusedC]);
    expect(performance.now() - accepted).toBeLessThan(1_000);
    for (const p of [b, c]) {
      const audit = await p.waitForLog((l) => l.audit === 'revocation' && l.sub === 'alice');
      expect(audit).toMatchObject({
        source: 'ssf',
        event: 'session_revoked',
        evicted: 1,
        fromPod: 'pod-a',
        refused: true,
      });
      expect(await status(`${p.url}/docs/x`, bob)).toBe(200);
    }
    const scrapeA = await (await request(`${a.adminUrl}/metrics`)).body.text();
    expect(scrapeA).toMatch(/^delegate_proxy_fleet_events_total\{kind="revocation",direction="published"\} 1$/m);
    for (const p of [b, c]) {
      const scrape = await (await request(`${p.adminUrl}/metrics`)).body.text();
      expect(scrape).toMatch(/^delegate_proxy_fleet_events_total\{kind="revocation",direction="received"\} 1$/m);
      expect(scrape).toMatch(/^delegate_proxy_fleet_apply_seconds_count\{kind="revocation"\} 1$/m);
      // Accept to applied, from the sender's timestamp: well under a second here.
      expect(scrape).toMatch(/^delegate_proxy_fleet_apply_seconds_bucket\{le="1",kind="revocation"\} 1$/m);
      expect(scrape).toMatch(/^delegate_proxy_fleet_connected 1$/m);
    }
    // Stored with its retention (one day by default) as the key's TTL.
    const keys = f.redis.cli('--scan', '--pattern', 'test-fleet:revocation:*').split('\n');
    expect(keys).toHaveLength(1);
    const ttl = Number(f.redis.cli('PTTL', keys[0]!));
    expect(ttl).toBeGreaterThan(86_000_000);
    expect(ttl).toBeLessThanOrEqual(86_400_000);

    // A restarted pod reads the list before it is ready.
    await c.kill();
    c = await f.start('pod-c');
    expect((await readyz(c.adminUrl)).status).toBe(200);
    expect(await status(`${c.url}/docs/x`, alice)).toBe(401);
    expect(await status(`${c.url}/docs/x`, bob)).toBe(200);

    const lifted = await admin(a.adminUrl, 'DELETE', { sub: 'alice', iss: f.as.issuer });
    expect(lifted).toEqual({ status: 200, json: { lifted: true, fleet: 'published' } });
    for (const p of [a, b, c]) {
      await within(1_000, async () => (await status(`${p.url}/docs/x`, alice)) === 200);
    }
    expect(f.redis.cli('--scan', '--pattern', 'test-fleet:revocation:*')).toBe('');
  }, 60_000);

  it('an admin POST on B is refused on A and C; the answer says it was published', async () => {
    const carol = await f.as.userToken('carol', ['documents:read']);
    const posted = await admin(b.adminUrl, 'POST', { sub: 'carol' });
    expect(posted).toEqual({ status: 200, json: { evicted: 0, closedStreams: 0, fleet: 'published' } });
    for (const p of [a, c]) await within(1_000, async () => (await status(`${p.url}/docs/x`, carol)) === 401);
    const listed = await admin(c.adminUrl, 'GET');
    expect((listed.json as { revocations: unknown[] }).revocations).toEqual([
      expect.objectContaining({ sub: 'carol', source: 'admin' }),
    ]);
  }, 30_000);
});
