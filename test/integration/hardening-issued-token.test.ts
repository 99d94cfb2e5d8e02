import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, type JWTPayload } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { type FakeAs, type FakeAsRequest, issued, makeJwt, startFakeAs } from '../helpers/fake-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

const AUDIENCE = 'https://docs.internal';
const RESOURCE = 'https://docs.internal/api';
const USER_EXP = Math.floor(Date.now() / 1000) + 600;

/** Claims a correct AS would put in the delegated token for this request. */
function correctClaims(req: FakeAsRequest): JWTPayload {
  const subject = decodeJwt(req.form.get('subject_token') ?? '');
  return {
    sub: String(subject.sub),
    aud: [RESOURCE, AUDIENCE],
    scope: 'documents:read',
    exp: USER_EXP - 60,
    ...(req.form.has('actor_token') ? { act: { sub: 'agent' } } : {}),
  };
}

/**
 * A misbehaving AS: answers with the correct claims changed by `tamper` (and optional extra
 * response fields), so each test shows one check catching one lie.
 */
async function setup(
  tamper: (claims: JWTPayload) => JWTPayload | string,
  options: { response?: Record<string, unknown>; actor?: boolean; allowExpAfterSubject?: boolean } = {},
): Promise<{ fake: FakeAs; upstream: TestUpstream; proxy: TestProxy; user: string }> {
  const fake = await startFakeAs();
  closers.push(() => fake.close());
  fake.answer = (req, res) => {
    const claims = tamper(correctClaims(req));
    const token = typeof claims === 'string' ? Promise.resolve(claims) : makeJwt(claims);
    void token.then((t) => {
      const a = issued(t, { scope: 'documents:read', ...options.response });
      res.writeHead(a.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.body));
    });
    return undefined;
  };
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  let actorToken: Record<string, unknown> = {};
  if (options.actor) {
    const file = join(mkdtempSync(join(tmpdir(), 'dp-actor-')), 'token');
    writeFileSync(file, await makeJwt({ sub: 'agent' }));
    actorToken = { actorToken: { file } };
  }
  const proxy = await startProxy({
    config: {
      authorizationServer: {
        tokenEndpoint: fake.tokenEndpoint,
        clientId: 'agent-service',
        clientAuth: 'none',
        allowIssuedExpAfterSubject: options.allowExpAfterSubject ?? false,
      },
      ...actorToken,
      routes: [
        {
          name: 'docs',
          match: { pathPrefix: '/docs' },
          upstream: upstream.url,
          scopes: ['documents:read'],
          audience: AUDIENCE,
          resource: RESOURCE,
        },
      ],
    },
  });
  closers.push(() => proxy.close());
  const user = await makeJwt({ sub: 'alice', scope: 'documents:read documents:write', exp: USER_EXP });
  return { fake, upstream, proxy, user };
}

async function call(proxy: TestProxy, user: string) {
  const res = await request(`${proxy.url}/docs/a`, { headers: { authorization: `Bearer ${user}` } });
  const text = await res.body.text();
  return { status: res.statusCode, json: JSON.parse(text) as Record<string, unknown> };
}

async function expectRejected(s: Awaited<ReturnType<typeof setup>>, detail: RegExp): Promise<void> {
  const res = await call(s.proxy, s.user);
  expect(res.status).toBe(502);
  expect(res.json.error).toBe('bad_gateway');
  expect(String(res.json.error_description)).toMatch(/authorization server issued/);
  // The token was never used, nor cached: the next request asks the AS again.
  expect(s.upstream.requests).toHaveLength(0);
  expect((await call(s.proxy, s.user)).status).toBe(502);
  expect(s.fake.tokenRequests()).toHaveLength(2);
  const failure = s.proxy.logs.lines().find((l) => l.audit === 'token_exchange' && l.outcome === 'rejected');
  expect(String(failure?.detail)).toMatch(detail);
  const metrics = await s.proxy.registry.metrics();
  expect(metrics).toContain('delegate_proxy_token_exchanges_total{route="docs",outcome="rejected"} 2');
}

describe('issued-token checks', () => {
  it('a correct delegated token is used', async () => {
    const s = await setup((c) => c);
    const res = await call(s.proxy, s.user);
    expect(res.status).toBe(200);
    expect(s.upstream.requests).toHaveLength(1);
  });

  it('an opaque delegated token cannot be inspected and is used', async () => {
    const s = await setup(() => 'opaque-token-value');
    expect((await call(s.proxy, s.user)).status).toBe(200);
    expect(s.upstream.requests[0]!.headers.authorization).toBe('Bearer opaque-token-value');
  });

  it('a token whose aud lacks the requested audience is refused (502)', async () => {
    const s = await setup((c) => ({ ...c, aud: [RESOURCE, 'https://elsewhere.example'] }));
    await expectRejected(s, /does not contain the requested audience/);
  });

  it('a token whose aud lacks the requested resource is refused (502)', async () => {
    const s = await setup((c) => ({ ...c, aud: AUDIENCE }));
    await expectRejected(s, /does not contain the requested resource/);
  });

  it('a token without any aud is refused when an audience was requested (502)', async () => {
    const s = await setup(({ aud: _aud, ...c }) => c);
    await expectRejected(s, /aud null/);
  });

  it('a token that expires after the user token is refused (502)', async () => {
    const s = await setup((c) => ({ ...c, exp: USER_EXP + 3600 }));
    await expectRejected(s, /after the subject token's exp/);
  });

  it('with allowIssuedExpAfterSubject such a token is used (the cache still caps its use)', async () => {
    const s = await setup((c) => ({ ...c, exp: USER_EXP + 3600 }), { allowExpAfterSubject: true });
    expect((await call(s.proxy, s.user)).status).toBe(200);
    expect(s.upstream.requests).toHaveLength(1);
  });

  it('a token for another subject is refused (502)', async () => {
    const s = await setup((c) => ({ ...c, sub: 'mallory' }));
    await expectRejected(s, /differs from the subject token's sub/);
  });

  it('a token with a wider scope claim than requested is refused (502)', async () => {
    const s = await setup((c) => ({ ...c, scope: 'documents:read documents:write' }));
    await expectRejected(s, /scope claim exceeds the request: documents:write/);
  });

  it('a response granting a wider scope than requested is refused (502)', async () => {
    const s = await setup((c) => c, { response: { scope: 'documents:read documents:write' } });
    await expectRejected(s, /granted scope exceeds the request/);
  });

  it('a token without act when an actor token was sent is refused (502)', async () => {
    const s = await setup(({ act: _act, ...c }) => c, { actor: true });
    await expectRejected(s, /no act claim/);
    expect(s.fake.tokenRequests()[0]!.form.get('actor_token')).toBeTruthy();
  });
});
