import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { type FakeAs, issued, makeJwt, startFakeAs } from '../helpers/fake-as.js';
import { waitFor, waitForAsync } from '../helpers/raw-http.js';
import { CLIENT_ID, startAs } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

async function upstreamForTest(): Promise<TestUpstream> {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  return upstream;
}

async function proxyWithIssuer(
  issuer: string,
  upstream: TestUpstream,
  as: Record<string, unknown> = {},
): Promise<TestProxy> {
  const proxy = await startProxy({
    config: {
      authorizationServer: { issuer, clientId: CLIENT_ID, clientAuth: 'none', ...as },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url }],
    },
  });
  closers.push(() => proxy.close());
  return proxy;
}

async function readyz(proxy: TestProxy): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${proxy.adminUrl}/readyz`);
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function call(proxy: TestProxy, token: string) {
  const res = await request(`${proxy.url}/r/a`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

/** A fake AS that serves metadata from `metadata(path)` and issues a token for any subject. */
async function metadataServer(
  metadata: (fake: FakeAs, path: string) => { status: number; body: unknown },
): Promise<FakeAs> {
  const token = await makeJwt({ sub: 'alice' });
  const fake = await startFakeAs();
  fake.answer = (req) => (req.method === 'GET' ? metadata(fake, req.path) : issued(token));
  closers.push(() => fake.close());
  return fake;
}

describe('authorization server discovery (authorizationServer.issuer)', () => {
  it('takes token_endpoint from RFC 8414 metadata of a real oidc-provider and exchanges there', async () => {
    const as = await startAs({ tokenEndpointAuthMethod: 'client_secret_basic' });
    closers.push(() => as.close());
    const upstream = await upstreamForTest();
    const proxy = await proxyWithIssuer(as.issuer, upstream, {
      clientAuth: 'client_secret_basic',
      clientSecretFile: as.secretFile,
    });
    expect((await readyz(proxy)).status).toBe(200);
    expect((await call(proxy, await as.userToken('alice', ['documents:read']))).status).toBe(200);
    expect(as.exchanges).toHaveLength(1);
    const discovered = proxy.logs.lines().find((l) => l.msg === 'authorization server discovered');
    expect(discovered).toMatchObject({ tokenEndpoint: as.tokenEndpoint, jwksUri: as.jwksUri });
    expect(String(discovered?.source)).toContain('/.well-known/oauth-authorization-server');
  });

  it('falls back to OpenID Connect discovery when RFC 8414 metadata is absent', async () => {
    const fake = await metadataServer((f, path) =>
      path === '/.well-known/openid-configuration'
        ? {
            status: 200,
            body: { issuer: f.url, token_endpoint: `${f.url}/oauth2/exchange`, jwks_uri: `${f.url}/keys` },
          }
        : { status: 404, body: {} },
    );
    const upstream = await upstreamForTest();
    const proxy = await proxyWithIssuer(fake.url, upstream);
    expect((await call(proxy, await makeJwt({ sub: 'alice' }))).status).toBe(200);
    expect(fake.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual(['/oauth2/exchange']);
    expect(
      fake.requests
        .filter((r) => r.method === 'GET')
        .map((r) => r.path)
        .slice(0, 2),
    ).toEqual(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']);
  });

  it('metadata whose issuer does not match exactly is refused: not ready, 503, the token endpoint is never called', async () => {
    const fake = await metadataServer((f, path) =>
      path.startsWith('/.well-known/')
        ? { status: 200, body: { issuer: `${f.url}/`, token_endpoint: `${f.url}/token` } }
        : { status: 404, body: {} },
    );
    const upstream = await upstreamForTest();
    const proxy = await proxyWithIssuer(fake.url, upstream);
    const ready = await readyz(proxy);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body.reasons)).toMatch(/discovery: .*does not match the configured/);
    const res = await call(proxy, await makeJwt({ sub: 'alice' }));
    expect(res.status).toBe(503);
    expect(res.json.error).toBe('temporarily_unavailable');
    expect(fake.tokenRequests()).toHaveLength(0);
    expect(upstream.requests).toHaveLength(0);
  });

  it('an issuer that is down at start: the proxy starts, stays not ready, and becomes ready once discovery succeeds', async () => {
    let up = false;
    const fake = await metadataServer((f, path) =>
      !up
        ? { status: 503, body: {} }
        : path === '/.well-known/oauth-authorization-server'
          ? { status: 200, body: { issuer: f.url, token_endpoint: `${f.url}/token` } }
          : { status: 404, body: {} },
    );
    const upstream = await upstreamForTest();
    const proxy = await proxyWithIssuer(fake.url, upstream);
    expect((await readyz(proxy)).status).toBe(503);
    expect((await call(proxy, await makeJwt({ sub: 'alice' }))).status).toBe(503);
    up = true;
    // The first retry runs about 1 s after the failure.
    await waitFor(
      () => proxy.logs.lines().some((l) => l.msg === 'authorization server discovered'),
      5_000,
      'discovery',
    );
    await waitForAsync(async () => (await readyz(proxy)).status === 200, 2_000, 'readiness');
    expect((await call(proxy, await makeJwt({ sub: 'alice' }))).status).toBe(200);
  });

  it('private_key_jwt with a discovered token endpoint: the assertion aud is that endpoint and the AS accepts it', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const keyFile = join(mkdtempSync(join(tmpdir(), 'dp-key-')), 'client.pem');
    writeFileSync(keyFile, await exportPKCS8(privateKey));
    const as = await startAs({
      clients: [
        {
          clientId: CLIENT_ID,
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: { keys: [await exportJWK(publicKey)] },
        },
      ],
    });
    closers.push(() => as.close());
    const upstream = await upstreamForTest();
    const proxy = await proxyWithIssuer(as.issuer, upstream, {
      clientAuth: 'private_key_jwt',
      privateKeyFile: keyFile,
    });
    expect((await call(proxy, await as.userToken('alice', ['documents:read']))).status).toBe(200);
    expect(as.exchanges.at(-1)).toMatchObject({ clientId: CLIENT_ID, outcome: 'issued' });
  });
});
