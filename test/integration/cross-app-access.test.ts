import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { describe, expect, it, vi } from 'vitest';
import {
  type AuthorizationServer,
  type AuthorizationServerOptions,
  startAuthorizationServer,
} from '../../src/dev/authorization-server.js';
import { useClosers } from '../helpers/closers.js';
import { CLIENT_ID, CLIENT_SECRET } from '../helpers/start-as.js';
import { manualClock, startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const RESOURCE = 'https://crm.example/api';

async function startServer(extra: Partial<AuthorizationServerOptions>): Promise<AuthorizationServer> {
  const server = await startAuthorizationServer({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, tokenEndpointAuthMethod: 'client_secret_basic' }],
    ...extra,
  });
  closers.push(() => server.close());
  return server;
}

/**
 * The IdP (issues ID-JAGs; refuses mallory), the resource AS (trusts only the IdP's ID-JAGs; refuses
 * eve), an upstream that accepts only the resource AS's tokens, and the proxy in front.
 */
async function setup(options: { clock?: ReturnType<typeof manualClock>; route?: Record<string, unknown> } = {}) {
  const idp = await startServer({ idJag: { allow: (sub) => sub !== 'mallory' } });
  const resourceAs = await startServer({
    jwtBearer: { trustedIssuer: idp.issuer, jwksUri: idp.jwksUri, allow: (sub) => sub !== 'eve' },
  });
  const keys = createRemoteJWKSet(new URL(resourceAs.jwksUri));
  const upstream = await startUpstream((req, res) => {
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    jwtVerify(token, keys, { issuer: resourceAs.issuer, audience: RESOURCE }).then(
      ({ payload }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sub: payload.sub, scope: payload.scope }));
      },
      () => {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"error":"invalid_token"}');
      },
    );
  });
  closers.push(() => upstream.close());
  const dir = mkdtempSync(join(tmpdir(), 'dp-xaa-'));
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, CLIENT_SECRET);
  const proxy = await startProxy({
    ...(options.clock ? { clock: options.clock } : {}),
    config: {
      authorizationServer: { tokenEndpoint: idp.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: secretFile },
      authorizationServers: { crm: { issuer: resourceAs.issuer, clientId: CLIENT_ID, clientSecretFile: secretFile } },
      routes: [
        {
          name: 'crm',
          match: { pathPrefix: '/crm' },
          upstream: upstream.url,
          stripPrefix: true,
          scopes: ['crm:read'],
          resource: RESOURCE,
          grant: 'id-jag',
          resourceAuthorizationServer: 'crm',
          ...options.route,
        },
      ],
    },
  });
  closers.push(() => proxy.close());
  const idJags = () => idp.exchanges.filter((e) => e.params.requested_token_type === ID_JAG);
  const bearerGrants = () => resourceAs.exchanges.filter((e) => e.params.grant_type === JWT_BEARER);
  return { idp, resourceAs, upstream, proxy, idJags, bearerGrants };
}

async function get(url: string, token: string, dispatcher?: Agent) {
  const res = await request(url, {
    headers: { authorization: `Bearer ${token}` },
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text };
}

describe('cross-domain routes (ID-JAG)', () => {
  it('the upstream gets the resource AS token for the user and scopes, never the user token or the ID-JAG', async () => {
    const { idp, resourceAs, upstream, proxy, idJags, bearerGrants } = await setup();
    const user = await idp.issueSubjectToken({ sub: 'alice', scope: ['crm:read', 'crm:write'] });
    const res = await get(`${proxy.url}/crm/accounts`, user);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ sub: 'alice', scope: 'crm:read' });

    // Step (a): RFC 8693 at the IdP, for the resource AS's issuer.
    expect(idJags()).toHaveLength(1);
    expect(idJags()[0]?.params).toMatchObject({ audience: resourceAs.issuer, resource: RESOURCE, scope: 'crm:read' });
    expect(idJags()[0]?.outcome).toBe('issued');
    // Step (b): RFC 7523 at the resource AS with the ID-JAG.
    expect(bearerGrants()).toHaveLength(1);
    const assertion = bearerGrants()[0]?.params.assertion ?? '';
    expect(decodeJwt(assertion)).toMatchObject({
      iss: idp.issuer,
      aud: resourceAs.issuer,
      sub: 'alice',
      client_id: CLIENT_ID,
    });
    expect(bearerGrants()[0]?.params.subject_token).toBeUndefined();

    const seen = upstream.requests[0];
    const delegated = String(seen?.headers.authorization).slice('Bearer '.length);
    expect(decodeJwt(delegated)).toMatchObject({
      iss: resourceAs.issuer,
      sub: 'alice',
      scope: 'crm:read',
      aud: RESOURCE,
    });
    const raw = seen?.rawHeaders.join('\n') ?? '';
    expect(raw).not.toContain(user);
    expect(raw).not.toContain(assertion);

    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain(
      'delegate_proxy_authorization_server_requests_total{server="default",step="id_jag",outcome="success"} 1',
    );
    expect(metrics).toContain(
      'delegate_proxy_authorization_server_requests_total{server="crm",step="jwt_bearer",outcome="success"} 1',
    );
    const audit = proxy.logs
      .lines()
      .filter((l) => l.audit === 'cross_app_access')
      .map((l) => `${String(l.step)}:${String(l.outcome)}`);
    expect(audit).toEqual(['id_jag:success', 'jwt_bearer:success']);
  });

  it('the IdP refuses: 403 with its reason, the resource AS is never called', async () => {
    const { idp, proxy, upstream, bearerGrants } = await setup();
    const user = await idp.issueSubjectToken({ sub: 'mallory', scope: ['crm:read'] });
    const res = await get(`${proxy.url}/crm/accounts`, user);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toMatchObject({
      error: 'insufficient_scope',
      error_description: expect.stringContaining('access_denied'),
    });
    expect(bearerGrants()).toHaveLength(0);
    expect(upstream.requests).toHaveLength(0);
  });

  it('the resource AS refuses: 403', async () => {
    const { idp, proxy, upstream, idJags, bearerGrants } = await setup();
    const user = await idp.issueSubjectToken({ sub: 'eve', scope: ['crm:read'] });
    const res = await get(`${proxy.url}/crm/accounts`, user);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'insufficient_scope' });
    expect(idJags()).toHaveLength(1);
    expect(bearerGrants()[0]?.outcome).toBe('invalid_grant');
    expect(upstream.requests).toHaveLength(0);
  });

  it('a 1,000-request herd costs one ID-JAG and one JWT bearer grant', async () => {
    const { idp, proxy, idJags, bearerGrants } = await setup();
    const user = await idp.issueSubjectToken({ sub: 'bob', scope: ['crm:read'] });
    const dispatcher = new Agent({ connections: 64 });
    closers.push(() => dispatcher.close());
    const results = await Promise.all(Array.from({ length: 1000 }, () => get(`${proxy.url}/crm/x`, user, dispatcher)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1000);
    expect(idJags()).toHaveLength(1);
    expect(bearerGrants()).toHaveLength(1);
  });

  it('refresh ahead renews both steps together', async () => {
    const clock = manualClock();
    const { idp, proxy, idJags, bearerGrants } = await setup({ clock });
    const user = await idp.issueSubjectToken({ sub: 'carol', scope: ['crm:read'] });
    expect((await get(`${proxy.url}/crm/x`, user)).status).toBe(200);
    // Issued for 300 s (dev AS default), refreshed 30 s ahead (cache.refreshAheadSeconds).
    clock.advance(280_000);
    expect((await get(`${proxy.url}/crm/x`, user)).status).toBe(200);
    await vi.waitFor(() => {
      expect(idJags()).toHaveLength(2);
      expect(bearerGrants()).toHaveLength(2);
    });
  });

  it('a route overrides subjectToken.type (the default stays access_token)', async () => {
    const { idp, proxy, idJags } = await setup({
      route: { subjectToken: { type: 'urn:ietf:params:oauth:token-type:jwt' } },
    });
    const user = await idp.issueSubjectToken({ sub: 'dave', scope: ['crm:read'] });
    expect((await get(`${proxy.url}/crm/x`, user)).status).toBe(200);
    expect(idJags()[0]?.params.subject_token_type).toBe('urn:ietf:params:oauth:token-type:jwt');
    expect(proxy.proxy.runtime().subjectTokenType).toBe('urn:ietf:params:oauth:token-type:access_token');
  });
});
