import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyProcess } from '../helpers/proxy-process.js';
import { SESSION_REVOKED } from '../helpers/ssf-transmitter.js';
import { type FleetSetup, REDIS_SERVER, setupFleet, status, within } from './fleet-setup.js';

// docs/fleet.md "SSF polling": one pod of the fleet polls a stream, under a lease in Redis.
describe.skipIf(REDIS_SERVER === undefined)('fleet: one poller per SSF poll stream', () => {
  let f: FleetSetup;
  const pods = new Map<string, ProxyProcess>();

  const leaseHolder = (): string => {
    const key = f.redis.cli('--scan', '--pattern', 'test-fleet:lease:ssf-poll:*');
    return key === '' ? '' : f.redis.cli('GET', key).split('/')[0]!;
  };
  const audits = (p: ProxyProcess, sub: string) => p.logs.filter((l) => l.audit === 'revocation' && l.sub === sub);

  beforeAll(async () => {
    f = await setupFleet();
    const extra = (): Record<string, unknown> => {
      const base = f.config();
      const revocation = base.revocation as { ssf: Record<string, unknown> };
      return {
        // Lease TTL: 2 intervals + one AS timeout = 3 s; lease period (TTL + an interval) 4 s.
        authorizationServer: { ...(base.authorizationServer as object), timeoutMs: 1_000 },
        revocation: { ...revocation, ssf: { ...revocation.ssf, poll: { url: f.tx.pollUrl, intervalSeconds: 1 } } },
      };
    };
    for (const name of ['pod-a', 'pod-b', 'pod-c']) pods.set(name, await f.start(name, extra()));
  }, 60_000);

  afterAll(async () => {
    await f?.close();
  });

  it('polls from one pod; when it dies another takes over within one lease period; no event is applied twice or lost', async () => {
    await within(5_000, async () => leaseHolder() !== '');
    const holder = leaseHolder();
    // About one poll a second from the one holder (three pods polling would be about three).
    const before = f.tx.polls.length;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(f.tx.polls.length - before).toBeLessThanOrEqual(5);
    expect(leaseHolder()).toBe(holder);

    const [u1, u2, u3] = await Promise.all(['u1', 'u2', 'u3'].map((u) => f.as.userToken(u, ['documents:read'])));
    f.tx.queue.set('jti-1', await f.tx.event(SESSION_REVOKED, { format: 'opaque', id: 'u1' }, { jti: 'jti-1' }));
    for (const p of pods.values()) await within(3_000, async () => (await status(`${p.url}/docs/x`, u1!)) === 401);

    // The holder applies jti-2 but its acknowledgement never reaches the transmitter, then it dies:
    // the next holder is handed jti-2 again.
    let loseAcks = true;
    f.tx.failPoll = (body) => loseAcks && (body.ack ?? []).includes('jti-2');
    f.tx.queue.set('jti-2', await f.tx.event(SESSION_REVOKED, { format: 'opaque', id: 'u2' }, { jti: 'jti-2' }));
    const dying = pods.get(holder)!;
    // Applied and shared (the others have it), not acknowledged: then the holder dies.
    for (const [name, p] of pods) {
      if (name !== holder) await p.waitForLog((l) => l.audit === 'revocation' && l.sub === 'u2', 5_000);
    }
    await dying.kill();
    pods.delete(holder);
    const killedAt = performance.now();
    loseAcks = false;
    f.tx.queue.set('jti-3', await f.tx.event(SESSION_REVOKED, { format: 'opaque', id: 'u3' }, { jti: 'jti-3' }));

    await within(6_000, async () => leaseHolder() !== '' && leaseHolder() !== holder);
    const takeover = performance.now() - killedAt;
    console.log(`poll lease: taken over ${Math.round(takeover)} ms after the holder was killed (lease period 4000 ms)`);
    // Within one lease period, plus this test's resolution: it reads the lease through redis-cli
    // processes, which take up to hundreds of ms each on a loaded machine.
    expect(takeover).toBeLessThan(4_000 + 1_000);
    for (const p of pods.values()) {
      await within(3_000, async () => (await status(`${p.url}/docs/x`, u3!)) === 401);
      expect(await status(`${p.url}/docs/x`, u2!)).toBe(401);
    }
    await within(3_000, async () => f.tx.queue.size === 0);
    // Each pod applied each event once: u2 from the dead holder's publication, never from the SET again.
    // A 401 can come back before the audit line that goes with it has been read from the pod's stdout.
    for (const p of pods.values()) {
      for (const sub of ['u1', 'u2', 'u3']) {
        await p.waitForLog((l) => l.audit === 'revocation' && l.sub === sub, 3_000);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const p of pods.values()) {
      for (const sub of ['u1', 'u2', 'u3']) expect(audits(p, sub), `${sub} on a survivor`).toHaveLength(1);
      expect(audits(p, 'u2')[0]).toMatchObject({ fromPod: holder });
    }
  }, 60_000);
});
