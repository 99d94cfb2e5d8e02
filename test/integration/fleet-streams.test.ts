import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { openSse } from '../helpers/sse-client.js';
import { startSseUpstream, type TestSseUpstream } from '../helpers/start-sse-upstream.js';
import { admin, type FleetSetup, REDIS_SERVER, setupFleet } from './fleet-setup.js';

// docs/fleet.md "Revocations": another pod applies a revocation through the same local revoker, so
// the revoked user's open streams close there too (docs/revocation.md "Open streams").
describe.skipIf(REDIS_SERVER === undefined)('fleet: a revocation on A closes the open streams on B', () => {
  let f: FleetSetup;
  let sse: TestSseUpstream;
  let a: ProxyProcess;
  let b: ProxyProcess;

  beforeAll(async () => {
    f = await setupFleet();
    sse = await startSseUpstream();
    const extra = {
      routes: [{ name: 'events', match: { pathPrefix: '/events' }, upstream: sse.url, scopes: ['documents:read'] }],
    };
    [a, b] = await Promise.all([f.start('pod-a', extra), f.start('pod-b', extra)]);
  }, 60_000);

  afterAll(async () => {
    await f?.close();
    await sse?.close();
  });

  it("alice's SSE stream through B ends within 1 s of the revocation accepted by A; bob's stays open", async () => {
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((u) => f.as.userToken(u, ['documents:read'])));
    const open = (token: string) =>
      openSse(`${b.url}/events/stream`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    const [aliceStream, bobStream] = await Promise.all([open(alice!), open(bob!)]);
    expect([aliceStream.status, bobStream.status]).toEqual([200, 200]);
    const posted = await admin(a.adminUrl, 'POST', { sub: 'alice' });
    expect(posted.json).toMatchObject({ fleet: 'published' });
    const accepted = performance.now();
    await Promise.race([
      aliceStream.ended,
      new Promise((_, reject) => setTimeout(() => reject(new Error('stream still open after 1 s')), 1_000)),
    ]);
    expect(performance.now() - accepted).toBeLessThan(1_000);
    expect(bobStream.done).toBe(false);
    expect(await b.waitForLog((l) => l.audit === 'revocation' && l.sub === 'alice')).toMatchObject({
      fromPod: 'pod-a',
      closedStreams: 1,
    });
    bobStream.close();
  }, 30_000);
});
