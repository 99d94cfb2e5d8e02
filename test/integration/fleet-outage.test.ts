import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { admin, type FleetSetup, REDIS_SERVER, readyz, setupFleet, status, within } from './fleet-setup.js';

async function metric(adminUrl: string, series: string): Promise<number | undefined> {
  const res = await request(`${adminUrl}/metrics`);
  const text = await res.body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

// docs/fleet.md "When Redis is unavailable".
describe.skipIf(REDIS_SERVER === undefined)('fleet: Redis unavailable', () => {
  let f: FleetSetup;
  let a: ProxyProcess;
  let b: ProxyProcess;

  beforeAll(async () => {
    f = await setupFleet();
    [a, b] = await Promise.all([f.start('pod-a'), f.start('pod-b')]);
  }, 60_000);

  afterAll(async () => {
    await f?.close();
  });

  it('serving continues; a revocation accepted during the outage reaches the other pod after Redis returns empty', async () => {
    const users = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((u) => f.as.userToken(u, ['documents:read'])));
    const dave = await f.as.userToken('dave', ['documents:read']);
    const erin = await f.as.userToken('erin', ['documents:read']);
    // Revoked before the outage: Redis forgets it when it restarts empty; the pods store it again.
    expect(await admin(a.adminUrl, 'POST', { sub: 'erin' })).toEqual({
      status: 200,
      json: { evicted: 0, closedStreams: 0, fleet: 'published' },
    });
    await within(1_000, async () => (await status(`${b.url}/docs/x`, erin)) === 401);

    let running = true;
    const outcomes = { ok: 0, failed: 0 };
    const traffic = (async () => {
      for (let i = 0; running; i++) {
        const p = i % 2 === 0 ? a : b;
        const code = await status(`${p.url}/docs/x`, users[i % users.length]!).catch(() => 0);
        if (code === 200) outcomes.ok++;
        else outcomes.failed++;
      }
    })();

    await f.redis.kill();
    for (const p of [a, b]) {
      await within(5_000, async () => (await metric(p.adminUrl, 'delegate_proxy_fleet_connected')) === 0);
    }
    expect(await status(`${b.url}/docs/x`, dave)).toBe(200);
    const posted = await admin(a.adminUrl, 'POST', { sub: 'dave' });
    expect(posted).toEqual({ status: 200, json: { evicted: 0, closedStreams: 0, fleet: 'queued' } });
    expect(await status(`${a.url}/docs/x`, dave)).toBe(401);
    expect(await metric(a.adminUrl, 'delegate_proxy_fleet_queued_events')).toBe(1);
    // Known revocations keep applying, and the pods stay ready.
    expect(await status(`${a.url}/docs/x`, erin)).toBe(401);
    expect(await status(`${b.url}/docs/x`, erin)).toBe(401);
    expect((await readyz(b.adminUrl)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));

    await f.redis.restart();
    await within(5_000, async () => (await status(`${b.url}/docs/x`, dave)) === 401);
    // B may learn of the event from its own re-read of the list before A has flushed its queue.
    await within(5_000, async () => (await metric(a.adminUrl, 'delegate_proxy_fleet_queued_events')) === 0);
    for (const p of [a, b]) {
      await within(5_000, async () => (await metric(p.adminUrl, 'delegate_proxy_fleet_connected')) === 1);
    }
    running = false;
    await traffic;
    expect(outcomes.failed).toBe(0);
    expect(outcomes.ok).toBeGreaterThan(20);
    console.log(`fleet outage: ${outcomes.ok} requests of unrevoked users succeeded, ${outcomes.failed} failed`);

    // Both revocations are stored again: a pod started now refuses both users.
    expect(f.redis.cli('ZCARD', 'test-fleet:revocations')).toBe('2');
    const c = await f.start('pod-c');
    expect(await status(`${c.url}/docs/x`, dave)).toBe(401);
    expect(await status(`${c.url}/docs/x`, erin)).toBe(401);
    expect(await status(`${c.url}/docs/x`, users[0]!)).toBe(200);
  }, 60_000);

  it('a pod that cannot read the list is not ready, and says why; it turns ready when Redis answers', async () => {
    await f.redis.kill();
    const d = await f.start('pod-d');
    const before = await readyz(d.adminUrl);
    expect(before.status).toBe(503);
    expect(before.body).toContain('fleet: revocation list not read from Redis yet');
    await f.redis.restart();
    await within(5_000, async () => (await readyz(d.adminUrl)).status === 200);
  }, 60_000);
});
