import type { ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import {
  type FakeAs,
  type FakeAsAnswer,
  type FakeAsRequest,
  issued,
  makeJwt,
  startFakeAs,
} from '../helpers/fake-as.js';
import { manualClock, startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

async function setup(
  answer: (req: FakeAsRequest, res: ServerResponse) => FakeAsAnswer | undefined,
  as: Record<string, unknown> = {},
  extra: { clock?: ReturnType<typeof manualClock>; config?: Record<string, unknown> } = {},
): Promise<{ fake: FakeAs; upstream: TestUpstream; proxy: TestProxy }> {
  const fake = await startFakeAs(answer);
  closers.push(() => fake.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    config: {
      authorizationServer: { tokenEndpoint: fake.tokenEndpoint, clientId: 'agent-service', clientAuth: 'none', ...as },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['documents:read'] }],
      ...extra.config,
    },
    ...(extra.clock ? { clock: extra.clock } : {}),
  });
  closers.push(() => proxy.close());
  return { fake, upstream, proxy };
}

async function userToken(sub: string): Promise<string> {
  return makeJwt({ sub, scope: 'documents:read', exp: Math.floor(Date.now() / 1000) + 3600 });
}

async function get(url: string, token: string) {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

/** A well-behaved answer: a token for the subject token's own `sub`. */
async function good(req: FakeAsRequest): Promise<FakeAsAnswer> {
  const sub = String(decodeJwt(req.form.get('subject_token') ?? '').sub);
  return issued(await makeJwt({ sub, scope: 'documents:read' }), { scope: 'documents:read' });
}

describe('failure policy toward the authorization server', () => {
  it('an AS that fails 3 times then recovers: the circuit opens (503 at once, Retry-After) and closes after a probe', async () => {
    const clock = manualClock();
    let failuresLeft = 3;
    const tokens = new Map<string, FakeAsAnswer>();
    for (const sub of ['alice', 'bob']) tokens.set(sub, await good(fakeRequest(await userToken(sub))));
    const { fake, upstream, proxy } = await setup(
      (req) =>
        failuresLeft-- > 0
          ? { status: 503, body: { error: 'temporarily_unavailable' } }
          : tokens.get(String(decodeJwt(req.form.get('subject_token') ?? '').sub)),
      { retry: { maxAttempts: 3, backoffMs: 0 }, circuitBreaker: { failureThreshold: 3, openSeconds: 10 } },
      { clock },
    );
    const alice = await userToken('alice');

    // Three failed attempts (one request, retried twice) open the circuit.
    const first = await get(`${proxy.url}/r/a`, alice);
    expect(first.status).toBe(503);
    expect(JSON.parse(first.text).error).toBe('temporarily_unavailable');
    expect(fake.tokenRequests()).toHaveLength(3);

    // While open: answered at once, the AS is not called, Retry-After says when to come back.
    const second = await get(`${proxy.url}/r/a`, alice);
    expect(second.status).toBe(503);
    expect(Number(second.headers['retry-after'])).toBe(10);
    expect(fake.tokenRequests()).toHaveLength(3);
    clock.advance(6_000);
    expect(Number((await get(`${proxy.url}/r/a`, alice)).headers['retry-after'])).toBe(4);
    expect(fake.tokenRequests()).toHaveLength(3);
    expect(upstream.requests).toHaveLength(0);

    // After the open period one probe goes through; the AS has recovered, so the circuit closes.
    clock.advance(4_000);
    expect((await get(`${proxy.url}/r/a`, alice)).status).toBe(200);
    expect(fake.tokenRequests()).toHaveLength(4);
    const bob = await userToken('bob');
    expect((await get(`${proxy.url}/r/a`, bob)).status).toBe(200);
    expect(fake.tokenRequests()).toHaveLength(5);

    const states = proxy.logs
      .lines()
      .filter((l) => typeof l.circuit === 'string')
      .map((l) => l.circuit);
    expect(states).toEqual(['open', 'half_open', 'closed']);
  });

  it('a failed half-open probe opens the circuit again', async () => {
    const clock = manualClock();
    const { fake, proxy } = await setup(
      () => ({ status: 502, body: {} }),
      { retry: { maxAttempts: 1 }, circuitBreaker: { failureThreshold: 2, openSeconds: 5 } },
      { clock },
    );
    const alice = await userToken('alice');
    await get(`${proxy.url}/r/a`, alice);
    await get(`${proxy.url}/r/a`, alice);
    expect(fake.tokenRequests()).toHaveLength(2);
    clock.advance(5_000);
    expect((await get(`${proxy.url}/r/a`, alice)).status).toBe(503); // the probe
    expect(fake.tokenRequests()).toHaveLength(3);
    const after = await get(`${proxy.url}/r/a`, alice);
    expect(after.status).toBe(503);
    expect(after.headers['retry-after']).toBe('5');
    expect(fake.tokenRequests()).toHaveLength(3);
  });

  it('a network error is retried and the retry succeeds', async () => {
    let calls = 0;
    const token = await good(fakeRequest(await userToken('alice')));
    const { fake, proxy } = await setup(
      (_req, res) => {
        calls += 1;
        if (calls === 1) {
          res.socket?.destroy();
          return undefined;
        }
        return token;
      },
      { retry: { maxAttempts: 3, backoffMs: 10 } },
    );
    const res = await get(`${proxy.url}/r/a`, await userToken('alice'));
    expect(res.status).toBe(200);
    expect(fake.tokenRequests()).toHaveLength(2);
  });

  it('a 4xx answer is never retried', async () => {
    const { fake, proxy } = await setup(() => ({ status: 400, body: { error: 'invalid_request' } }), {
      retry: { maxAttempts: 5, backoffMs: 0 },
    });
    const res = await get(`${proxy.url}/r/a`, await userToken('alice'));
    expect(res.status).toBe(502);
    expect(fake.tokenRequests()).toHaveLength(1);
  });

  it('retries stay within the exchange time budget', async () => {
    const { fake, proxy } = await setup(() => undefined /* never answers */, {
      timeoutMs: 200,
      retry: { maxAttempts: 10, budgetMs: 500, backoffMs: 10 },
    });
    const started = performance.now();
    const res = await get(`${proxy.url}/r/a`, await userToken('alice'));
    const elapsed = performance.now() - started;
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(elapsed).toBeLessThan(1_000);
    expect(fake.tokenRequests().length).toBeGreaterThanOrEqual(2);
    expect(fake.tokenRequests().length).toBeLessThanOrEqual(3);
  });

  it('invalid_grant is remembered per subject token for cache.invalidGrantMemorySeconds', async () => {
    const clock = manualClock();
    const { fake, upstream, proxy } = await setup(
      () => ({ status: 400, body: { error: 'invalid_grant', error_description: 'token revoked' } }),
      {},
      { clock, config: { cache: { invalidGrantMemorySeconds: 5 } } },
    );
    const revoked = await userToken('alice');
    for (let i = 0; i < 5; i++) {
      const res = await get(`${proxy.url}/r/a`, revoked);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.text).error).toBe('invalid_token');
    }
    expect(fake.tokenRequests()).toHaveLength(1);
    // Another user's token is not affected.
    expect((await get(`${proxy.url}/r/a`, await userToken('bob'))).status).toBe(401);
    expect(fake.tokenRequests()).toHaveLength(2);
    // After the memory window the AS is asked again.
    clock.advance(5_000);
    await get(`${proxy.url}/r/a`, revoked);
    expect(fake.tokenRequests()).toHaveLength(3);
    expect(upstream.requests).toHaveLength(0);
    expect(proxy.logs.text()).not.toContain(revoked);
  });

  it('never falls back to the user token while the AS is failing', async () => {
    const { upstream, proxy } = await setup(() => ({ status: 500, body: {} }), {
      retry: { maxAttempts: 2, backoffMs: 0 },
    });
    const alice = await userToken('alice');
    for (let i = 0; i < 3; i++) expect((await get(`${proxy.url}/r/a`, alice)).status).toBe(503);
    expect(upstream.requests).toHaveLength(0);
  });
});

function fakeRequest(subjectToken: string): FakeAsRequest {
  return { method: 'POST', path: '/token', form: new URLSearchParams({ subject_token: subjectToken }), headers: {} };
}
