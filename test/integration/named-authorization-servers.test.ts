import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { useClosers } from '../helpers/closers.js';
import { configProblems } from '../helpers/config-problems.js';
import { CLIENT_ID, startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';
import { unusedAddress } from '../helpers/unused-address.js';

const closers = useClosers();

/** Two real authorization servers: `home` is the default, `partner` a named one with its own client auth. */
async function setup(partnerServer: Record<string, unknown> = {}) {
  const home = await startAs();
  closers.push(() => home.close());
  const partner = await startAs({ tokenEndpointAuthMethod: 'client_secret_post' });
  closers.push(() => partner.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as: home,
    config: {
      authorizationServers: {
        partner: {
          issuer: partner.issuer,
          clientId: CLIENT_ID,
          clientAuth: 'client_secret_post',
          clientSecretFile: partner.secretFile,
          ...partnerServer,
        },
      },
      routes: [
        {
          name: 'home',
          match: { pathPrefix: '/home' },
          upstream: upstream.url,
          stripPrefix: true,
          scopes: ['documents:read'],
          audience: 'https://home.internal',
        },
        {
          name: 'partner',
          match: { pathPrefix: '/partner' },
          upstream: upstream.url,
          stripPrefix: true,
          scopes: ['documents:read'],
          audience: 'https://partner.example',
          authorizationServer: 'partner',
        },
      ],
    },
  });
  closers.push(() => proxy.close());
  return { home, partner, upstream, proxy };
}

async function get(url: string, token: string) {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

function upstreamToken(upstream: { requests: { headers: Record<string, string | string[] | undefined> }[] }): string {
  const auth = String(upstream.requests.at(-1)?.headers.authorization ?? '');
  return auth.slice('Bearer '.length);
}

describe('authorization servers by name', () => {
  it('exchanges each route at its own server (discovered, own client auth); the default stays the default', async () => {
    const { home, partner, upstream, proxy } = await setup();
    const homeUser = await home.userToken('alice', ['documents:read']);
    const partnerUser = await partner.userToken('alice', ['documents:read']);
    // The readiness probe also reaches the default token endpoint: count from here.
    const homeBefore = home.faults.received;
    const partnerBefore = partner.faults.received;

    expect((await get(`${proxy.url}/home/x`, homeUser)).status).toBe(200);
    expect(decodeJwt(upstreamToken(upstream))).toMatchObject({
      iss: home.issuer,
      sub: 'alice',
      aud: 'https://home.internal',
    });

    const partnerRes = await get(`${proxy.url}/partner/x`, partnerUser);
    expect(partnerRes.status).toBe(200);
    expect(decodeJwt(upstreamToken(upstream))).toMatchObject({
      iss: partner.issuer,
      sub: 'alice',
      aud: 'https://partner.example',
    });
    expect(upstreamToken(upstream)).not.toBe(partnerUser);
    expect(partner.faults.received - partnerBefore).toBe(1);
    expect(home.faults.received - homeBefore).toBe(1);
  });

  it('a token the named server refuses is refused there (invalid_grant -> 401), never tried at the default', async () => {
    const { home, partner, upstream, proxy } = await setup();
    const homeUser = await home.userToken('bob', ['documents:read']);
    const homeBefore = home.faults.received;
    const partnerBefore = partner.faults.received;
    const res = await get(`${proxy.url}/partner/x`, homeUser);
    expect(res.status).toBe(401);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_token' });
    expect(partner.faults.received - partnerBefore).toBe(1);
    expect(home.faults.received - homeBefore).toBe(0);
    expect(upstream.requests).toHaveLength(0);
  });

  it('failure policy is per server: the partner circuit opens, the default server keeps working', async () => {
    const { home, partner, proxy } = await setup({
      retry: { maxAttempts: 1 },
      circuitBreaker: { failureThreshold: 1, openSeconds: 60 },
    });
    partner.faults.mode = 'unavailable';
    const partnerUser = await partner.userToken('carol', ['documents:read']);
    expect((await get(`${proxy.url}/partner/x`, partnerUser)).status).toBe(503);
    const before = partner.faults.received;
    // Open: answered at once without calling the partner again.
    expect((await get(`${proxy.url}/partner/y`, partnerUser)).status).toBe(503);
    expect(partner.faults.received).toBe(before);
    const homeUser = await home.userToken('carol', ['documents:read']);
    expect((await get(`${proxy.url}/home/x`, homeUser)).status).toBe(200);
  });

  it('readiness waits for every named server discovery', async () => {
    const { proxy } = await setup({ issuer: (await unusedAddress()).url });
    const res = await request(`${proxy.adminUrl}/readyz`);
    const text = await res.body.text();
    expect(res.statusCode).toBe(503);
    expect(text).toContain('discovery:partner');
  });
});

describe('authorization servers by name: config', () => {
  const as = { tokenEndpoint: 'https://as.example/token', clientId: 'agent', clientAuth: 'none' };
  const route = { name: 'r', match: { pathPrefix: '/r' }, upstream: 'https://r.internal' };

  it('an unknown server name is an error with its path', () => {
    expect(configProblems({ authorizationServer: as, routes: [{ ...route, authorizationServer: 'nope' }] })).toEqual([
      'routes[0].authorizationServer: unknown authorization server "nope" (not in authorizationServers)',
    ]);
  });

  it('validates each named server like the default, with its path', () => {
    const list = configProblems({
      authorizationServer: as,
      authorizationServers: { partner: { clientId: 'x', clientAuth: 'client_secret_post' }, default: as },
      routes: [route],
    });
    expect(list).toEqual(
      expect.arrayContaining([
        'authorizationServers.partner.tokenEndpoint: required unless issuer is set',
        'authorizationServers.partner.clientSecretFile: required for clientAuth client_secret_post',
        expect.stringContaining('authorizationServers: "default" is the name of authorizationServer'),
      ]),
    );
  });

  it('reads each named server secret; without authorizationServers the config is as before', () => {
    const c = resolveConfig({ authorizationServer: as, routes: [{ ...route, authorizationServer: 'default' }] });
    expect(c.authorizationServers).toEqual({});
    expect(
      configProblems({
        authorizationServer: as,
        authorizationServers: {
          p: { ...as, clientAuth: 'client_secret_basic', clientSecretFile: '/nonexistent/secret' },
        },
        routes: [route],
      }),
    ).toEqual(['authorizationServers.p.clientSecretFile: cannot read /nonexistent/secret (ENOENT)']);
  });

  it('grant id-jag needs a known resourceAuthorizationServer with an issuer; the key needs the grant', () => {
    const named = { issuer: 'https://as.partner.example', clientId: 'agent', clientAuth: 'none' };
    const idJag = { ...route, grant: 'id-jag' };
    expect(configProblems({ authorizationServer: as, routes: [idJag] })).toEqual([
      'routes[0].resourceAuthorizationServer: required for grant: id-jag',
    ]);
    expect(
      configProblems({ authorizationServer: as, routes: [{ ...idJag, resourceAuthorizationServer: 'nope' }] }),
    ).toEqual([
      'routes[0].resourceAuthorizationServer: unknown authorization server "nope" (not in authorizationServers)',
    ]);
    expect(
      configProblems({
        authorizationServer: as,
        authorizationServers: { p: { ...named, issuer: undefined, tokenEndpoint: 'https://p/token' } },
        routes: [{ ...idJag, resourceAuthorizationServer: 'p' }],
      }),
    ).toEqual([
      'routes[0].resourceAuthorizationServer: authorization server "p" needs an issuer (the ID-JAG audience)',
    ]);
    expect(
      configProblems({
        authorizationServer: as,
        authorizationServers: { p: named },
        routes: [{ ...route, resourceAuthorizationServer: 'p' }],
      }),
    ).toEqual(['routes[0].resourceAuthorizationServer: only with grant: id-jag']);
    const ok = resolveConfig({
      authorizationServer: as,
      authorizationServers: { p: named },
      routes: [
        {
          ...idJag,
          resourceAuthorizationServer: 'p',
          subjectToken: { type: 'urn:ietf:params:oauth:token-type:id_token' },
        },
      ],
    });
    expect(ok.routes[0]).toMatchObject({
      grant: 'id-jag',
      resourceAuthorizationServer: 'p',
      subjectToken: { type: 'urn:ietf:params:oauth:token-type:id_token' },
    });
  });
});
