import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { waitForAsync } from '../helpers/raw-http.js';
import type { AsFaultMode } from '../helpers/start-as.js';
import { get, startRig, userTokens } from './harness.js';

const closers = useClosers();

describe('authorization server flapping between ok, 503, hang and garbage', () => {
  it('cached users keep working; new users get 502/503 with a JSON error (never a 500, never an undelegated request); all recover', async () => {
    const rig = await startRig(closers, {
      config: {
        authorizationServer: {
          timeoutMs: 300,
          retry: { maxAttempts: 2, backoffMs: 10 },
          circuitBreaker: { failureThreshold: 3, openSeconds: 1 },
        },
      },
    });
    const cached = await userTokens(rig.as, 5, 'cached');
    for (const t of cached) expect((await get(rig, '/documents/warm', t)).status).toBe(200);
    let fresh = 0;
    const modes: AsFaultMode[] = ['unavailable', 'ok', 'hang', 'garbage', 'ok', 'unavailable', 'garbage', 'hang'];
    for (const mode of modes) {
      rig.as.faults.mode = mode;
      const newcomers = await userTokens(rig.as, 4, `new-${fresh}`);
      fresh += 1;
      const answers = await Promise.all([
        ...cached.map((t) => get(rig, `/documents/${mode}`, t)),
        ...newcomers.map((t) => get(rig, `/documents/${mode}`, t)),
      ]);
      // Users with a cached, still-valid token never notice the AS.
      expect(answers.slice(0, cached.length).map((a) => a.status)).toEqual(cached.map(() => 200));
      for (const a of answers.slice(cached.length)) {
        if (mode === 'ok' && a.status === 200) continue;
        // ok right after a fault may still meet the open circuit (503); faults give 502 or 503.
        expect([502, 503]).toContain(a.status);
        expect(JSON.parse(a.text)).toMatchObject({
          error: expect.stringMatching(/^(bad_gateway|temporarily_unavailable)$/),
        });
        if (a.status === 503) expect(a.headers['retry-after']).toMatch(/^\d+$/);
      }
    }
    // Back to ok: after the open period a new user is served again.
    rig.as.faults.mode = 'ok';
    const [late] = await userTokens(rig.as, 1, 'late');
    await waitForAsync(async () => (await get(rig, '/documents/late', late)).status === 200, 10_000, 'recovery');
    // Nothing reached the upstream without a delegated token issued by the AS.
    for (const r of rig.upstream.requests) {
      const auth = r.headers.authorization ?? '';
      expect(auth).toMatch(/^Bearer /);
      expect(decodeJwt(auth.slice(7)).iss).toBe(rig.as.issuer);
      expect(decodeJwt(auth.slice(7)).aud).toBe('https://docs.internal');
    }
  }, 60_000);
});
