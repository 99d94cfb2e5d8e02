import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/pipeline/clock.js';
import { useClosers } from '../helpers/closers.js';
import { makeJwt } from '../helpers/fake-as.js';
import { CLIENT_ID, startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { manualClock, startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

// One AS for the file (oidc-provider start-up with a fresh RSA key costs ~0.5 s).
let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

async function setup(
  verify: Record<string, unknown>,
  options: { clock?: Clock; discover?: boolean } = {},
): Promise<{ upstream: TestUpstream; proxy: TestProxy; exchangesBefore: number }> {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as,
    config: {
      ...(options.discover ? { authorizationServer: { issuer: as.issuer } } : {}),
      subjectToken: {
        verify: {
          issuer: as.issuer,
          audience: CLIENT_ID,
          ...(options.discover ? {} : { jwksUri: as.jwksUri }),
          ...verify,
        },
      },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['documents:read'] }],
    },
    ...(options.clock ? { clock: options.clock } : {}),
  });
  closers.push(() => proxy.close());
  return { upstream, proxy, exchangesBefore: as.exchanges.length };
}

async function call(proxy: TestProxy, token: string) {
  const res = await request(`${proxy.url}/r/a`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as Record<string, unknown> };
}

async function expectRefusedBeforeExchange(
  s: Awaited<ReturnType<typeof setup>>,
  token: string,
  description = 'the user token is not valid',
) {
  const res = await call(s.proxy, token);
  expect(res.status).toBe(401);
  expect(res.json).toEqual({ error: 'invalid_token', error_description: description });
  expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  expect(as.exchanges.length - s.exchangesBefore).toBe(0);
  expect(s.upstream.requests).toHaveLength(0);
}

describe('subject token verification (subjectToken.verify)', () => {
  it('a valid user token signed by the issuer passes and is exchanged', async () => {
    const s = await setup({});
    expect((await call(s.proxy, await as.userToken('alice', ['documents:read']))).status).toBe(200);
    expect(as.exchanges.length - s.exchangesBefore).toBe(1);
    const ready = await request(`${s.proxy.adminUrl}/readyz`);
    expect(ready.statusCode).toBe(200);
    await ready.body.dump();
  });

  it('an expired user token gets 401 before any exchange', async () => {
    const s = await setup({ clockToleranceSeconds: 0 });
    await expectRefusedBeforeExchange(
      s,
      await as.userToken('alice', ['documents:read'], -60),
      'the user token has expired',
    );
  });

  it('a token signed with a foreign key (right iss and aud) gets 401 before any exchange', async () => {
    const s = await setup({});
    const forged = await makeJwt({
      iss: as.issuer,
      aud: CLIENT_ID,
      sub: 'alice',
      scope: 'documents:read',
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    await expectRefusedBeforeExchange(s, forged);
  });

  it('a token for another audience gets 401 before any exchange', async () => {
    const s = await setup({});
    const token = await as.issueSubjectToken({
      sub: 'alice',
      scope: ['documents:read'],
      audience: 'some-other-service',
    });
    await expectRefusedBeforeExchange(s, token);
  });

  it('a token from another issuer name gets 401 before any exchange', async () => {
    const s = await setup({ issuer: 'https://issuer.example' });
    await expectRefusedBeforeExchange(s, await as.userToken('alice', ['documents:read']));
  });

  it('a token whose alg is not in the allow-list gets 401 before any exchange', async () => {
    const s = await setup({ algorithms: ['ES256'] });
    await expectRefusedBeforeExchange(s, await as.userToken('alice', ['documents:read']));
  });

  it('expiry is judged on the injected clock', async () => {
    const clock = manualClock();
    const s = await setup({ clockToleranceSeconds: 0 }, { clock });
    const user = await as.userToken('alice', ['documents:read'], 600);
    expect((await call(s.proxy, user)).status).toBe(200);
    clock.advance(590_000); // 10 s before exp
    expect((await call(s.proxy, user)).status).toBe(200);
    clock.advance(20_000); // 10 s past exp
    const res = await call(s.proxy, user);
    expect(res.status).toBe(401);
    expect(res.json.error_description).toBe('the user token has expired');
  });

  it('without jwksUri the discovered jwks_uri is used', async () => {
    const s = await setup({}, { discover: true });
    expect((await call(s.proxy, await as.userToken('alice', ['documents:read']))).status).toBe(200);
    const forged = await makeJwt({
      iss: as.issuer,
      aud: CLIENT_ID,
      sub: 'alice',
      exp: Math.floor(Date.now() / 1000) + 600,
    });
    expect((await call(s.proxy, forged)).status).toBe(401);
  });

  it('an unreachable JWKS answers 503 (not 401) and readiness reports it', async () => {
    const s = await setup({ jwksUri: 'http://127.0.0.1:1/jwks' });
    const res = await call(s.proxy, await as.userToken('alice', ['documents:read']));
    expect(res.status).toBe(503);
    expect(res.json.error).toBe('temporarily_unavailable');
    expect(as.exchanges.length - s.exchangesBefore).toBe(0);
    const ready = await request(`${s.proxy.adminUrl}/readyz`);
    expect(ready.statusCode).toBe(503);
    expect(JSON.stringify(await ready.body.json())).toContain('jwks: ');
  });
});
