import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { useClosers } from '../helpers/closers.js';
import { problemsOf } from '../helpers/config-problems.js';
import { CLIENT_ID, startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

function writeTemp(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'dp-key-')), name);
  writeFileSync(file, text);
  return file;
}

/** The AS knows only `publicJwk` for our client: it verifies every assertion itself. */
async function setup(
  publicJwk: object,
  privateKeyFile: string,
): Promise<{ as: TestAuthorizationServer; upstream: TestUpstream; proxy: TestProxy }> {
  const as = await startAs({
    clients: [{ clientId: CLIENT_ID, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [publicJwk] } }],
  });
  closers.push(() => as.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    config: {
      authorizationServer: {
        tokenEndpoint: as.tokenEndpoint,
        clientId: CLIENT_ID,
        clientAuth: 'private_key_jwt',
        privateKeyFile,
      },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['documents:read'] }],
    },
  });
  closers.push(() => proxy.close());
  return { as, upstream, proxy };
}

async function call(proxy: TestProxy, token: string) {
  const res = await request(`${proxy.url}/r/a`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

describe('client authentication: private_key_jwt', () => {
  it('an RSA key from a PKCS#8 PEM file: the AS verifies the assertion and issues the token', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const keyFile = writeTemp('client.pem', await exportPKCS8(privateKey));
    const { as, upstream, proxy } = await setup(await exportJWK(publicKey), keyFile);
    const res = await call(proxy, await as.userToken('alice', ['documents:read']));
    expect(res.status).toBe(200);
    expect(as.exchanges.at(-1)).toMatchObject({ clientId: CLIENT_ID, outcome: 'issued' });
    expect(as.exchanges.at(-1)!.params.client_assertion_type).toBe(
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
    expect(upstream.requests).toHaveLength(1);
  });

  it('an EC P-256 key from a JWK file with kid: ES256 assertion accepted', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const keyFile = writeTemp('client.jwk', JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'agent-key-1' }));
    const { as, proxy } = await setup({ ...(await exportJWK(publicKey)), kid: 'agent-key-1' }, keyFile);
    expect((await call(proxy, await as.userToken('alice', ['documents:read']))).status).toBe(200);
  });

  it('every token request carries a fresh assertion (the AS refuses a replayed jti)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const keyFile = writeTemp('client.pem', await exportPKCS8(privateKey));
    const { as, proxy } = await setup(await exportJWK(publicKey), keyFile);
    for (const sub of ['alice', 'bob', 'carol']) {
      expect((await call(proxy, await as.userToken(sub, ['documents:read']))).status, sub).toBe(200);
    }
    expect(as.exchanges.map((e) => e.outcome)).toEqual(['issued', 'issued', 'issued']);
  });

  it('a key the AS does not know is refused: 502, and the user token goes nowhere', async () => {
    const registered = await generateKeyPair('RS256', { extractable: true });
    const other = await generateKeyPair('RS256', { extractable: true });
    const keyFile = writeTemp('client.pem', await exportPKCS8(other.privateKey));
    const { as, upstream, proxy } = await setup(await exportJWK(registered.publicKey), keyFile);
    const res = await call(proxy, await as.userToken('alice', ['documents:read']));
    expect(res.status).toBe(502);
    expect(res.json).toEqual({
      error: 'bad_gateway',
      error_description: 'the proxy could not authenticate to the authorization server',
    });
    expect(upstream.requests).toHaveLength(0);
    expect(proxy.logs.lines().some((l) => l.outcome === 'invalid_client')).toBe(true);
  });
});

describe('client authentication: private key validated at config load', () => {
  function load(privateKeyFile: string) {
    return () =>
      resolveConfig({
        authorizationServer: {
          tokenEndpoint: 'https://as.example/token',
          clientId: 'c',
          clientAuth: 'private_key_jwt',
          privateKeyFile,
        },
        routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: 'http://127.0.0.1:1' }],
      });
  }

  it('a missing key file is a problem at authorizationServer.privateKeyFile', () => {
    expect(problemsOf(load('/nonexistent/key.pem'))).toEqual([
      'authorizationServer.privateKeyFile: cannot read /nonexistent/key.pem (ENOENT)',
    ]);
  });

  it('a public key instead of a private one is refused with its path', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const file = writeTemp('public.pem', await exportSPKI(publicKey));
    expect(problemsOf(load(file))).toEqual([
      expect.stringMatching(/^authorizationServer\.privateKeyFile: .*not a private key in PEM or JWK form/),
    ]);
  });

  it('a public JWK (no "d") is refused with its path', async () => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const file = writeTemp('public.jwk', JSON.stringify(await exportJWK(publicKey)));
    expect(problemsOf(load(file))).toEqual([
      expect.stringMatching(/^authorizationServer\.privateKeyFile: .*no private part/),
    ]);
  });

  it('text that is no key at all is refused without echoing it', () => {
    const file = writeTemp('garbage.pem', 'this-is-not-a-key-SECRET123');
    const found = problemsOf(load(file));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^authorizationServer\.privateKeyFile: /);
    expect(found[0]).not.toContain('SECRET123');
  });
});
