import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JSONWebKeySet, jwtVerify, SignJWT } from 'jose';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AuthorizationServer,
  type AuthorizationServerOptions,
  startAuthorizationServer,
} from '../../src/dev/authorization-server.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

const servers: AuthorizationServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: Partial<AuthorizationServerOptions> = {}): Promise<AuthorizationServer> {
  const server = await startAuthorizationServer({
    clients: [
      { clientId: 'basic-client', clientSecret: 'basic-secret', tokenEndpointAuthMethod: 'client_secret_basic' },
      { clientId: 'post-client', clientSecret: 'post-secret', tokenEndpointAuthMethod: 'client_secret_post' },
    ],
    ...options,
  });
  servers.push(server);
  return server;
}

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function exchange(
  as: AuthorizationServer,
  params: Record<string, string | string[]>,
  headers: Record<string, string> = { authorization: basic('basic-client', 'basic-secret') },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const form = new URLSearchParams({ grant_type: GRANT });
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) form.append(name, item);
  }
  const response = await request(as.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: form.toString(),
  });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

async function verifyIssued(as: AuthorizationServer, token: unknown) {
  const jwks = (await (await request(as.jwksUri)).body.json()) as JSONWebKeySet;
  const { payload, protectedHeader } = await jwtVerify(String(token), createLocalJWKSet(jwks), { issuer: as.issuer });
  return { payload, protectedHeader };
}

describe('dev authorization server: token exchange', () => {
  it('serves discovery with the token-exchange grant and its signing key in the JWKS', async () => {
    const as = await start();
    const discovery = (await (await request(`${as.url}/.well-known/openid-configuration`)).body.json()) as Record<
      string,
      unknown
    >;
    expect(discovery.issuer).toBe(as.issuer);
    expect(discovery.token_endpoint).toBe(as.tokenEndpoint);
    expect(discovery.jwks_uri).toBe(as.jwksUri);
    expect(discovery.grant_types_supported).toContain(GRANT);

    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['docs:read'] });
    const { payload } = await verifyIssued(as, subjectToken);
    expect(payload).toMatchObject({ sub: 'alice', scope: 'docs:read', aud: 'agent-service', iss: as.issuer });
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(payload.jti).toEqual(expect.any(String));
  });

  it('issues a delegated JWT with client_secret_basic, narrowed scope, audience, resource and act', async () => {
    const as = await start({ accessTokenTtlSeconds: 120 });
    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['docs:read', 'docs:write'] });
    const actorToken = await as.issueActorToken({ sub: 'spiffe://cluster/agent' });

    const { status, body } = await exchange(as, {
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: actorToken,
      actor_token_type: JWT_TOKEN_TYPE,
      scope: 'docs:read',
      audience: 'docs-api',
      resource: 'https://docs.internal',
    });

    expect(status).toBe(200);
    expect(body).toMatchObject({
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 120,
      scope: 'docs:read',
    });
    const { payload, protectedHeader } = await verifyIssued(as, body.access_token);
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload).toMatchObject({
      sub: 'alice',
      scope: 'docs:read',
      client_id: 'basic-client',
      act: { sub: 'spiffe://cluster/agent' },
    });
    expect(payload.aud).toEqual(['https://docs.internal', 'docs-api']);
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(payload.exp! - Math.floor(Date.now() / 1000)).toBeGreaterThan(110);
    expect(payload.jti).toEqual(expect.any(String));
  });

  it('issues with client_secret_post; no scope asked grants the subject scope, default audience', async () => {
    const as = await start();
    const subjectToken = await as.issueSubjectToken({ sub: 'bob', scope: ['a', 'b'] });

    const { status, body } = await exchange(
      as,
      {
        client_id: 'post-client',
        client_secret: 'post-secret',
        subject_token: subjectToken,
        subject_token_type: JWT_TOKEN_TYPE,
      },
      {},
    );

    expect(status).toBe(200);
    expect(body).toMatchObject({ scope: 'a b', expires_in: 300 });
    const { payload } = await verifyIssued(as, body.access_token);
    expect(payload).toMatchObject({
      sub: 'bob',
      scope: 'a b',
      aud: 'urn:delegate-proxy:default',
      client_id: 'post-client',
    });
    expect(payload.act).toBeUndefined();
  });

  it('issues with private_key_jwt', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const as = await start({
      clients: [
        {
          clientId: 'jwt-client',
          tokenEndpointAuthMethod: 'private_key_jwt',
          jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig' }] },
        },
      ],
    });
    const subjectToken = await as.issueSubjectToken({ sub: 'carol', scope: ['x'] });
    const clientAssertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('jwt-client')
      .setSubject('jwt-client')
      .setAudience(as.tokenEndpoint)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(privateKey);

    const { status, body } = await exchange(
      as,
      {
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
      },
      {},
    );

    expect(status).toBe(200);
    const { payload } = await verifyIssued(as, body.access_token);
    expect(payload).toMatchObject({ sub: 'carol', client_id: 'jwt-client', scope: 'x' });
    expect(as.exchanges[0]?.params).not.toHaveProperty('client_assertion');
  });

  it('answers invalid_scope when asking beyond the subject scope', async () => {
    const as = await start();
    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['docs:read'] });

    const { status, body } = await exchange(as, {
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      scope: 'docs:read docs:delete',
    });

    expect(status).toBe(400);
    expect(body.error).toBe('invalid_scope');
  });

  it.each([
    ['not a JWT', async () => 'not-a-jwt'],
    [
      'expired',
      async (as: AuthorizationServer) => as.issueSubjectToken({ sub: 'a', scope: ['x'], expiresInSeconds: -60 }),
    ],
    [
      'signed by another server',
      async () => {
        const other = await start();
        return other.issueSubjectToken({ sub: 'a', scope: ['x'] });
      },
    ],
  ])('answers invalid_grant for a subject token that is %s', async (_name, makeToken) => {
    const as = await start();
    const { status, body } = await exchange(as, {
      subject_token: await makeToken(as),
      subject_token_type: ACCESS_TOKEN_TYPE,
    });

    expect(status).toBe(400);
    expect(body.error).toBe('invalid_grant');
  });

  it('answers invalid_request for an unsupported subject_token_type or a bad actor token', async () => {
    const as = await start();
    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['x'] });

    const badType = await exchange(as, {
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:saml2',
    });
    const badActor = await exchange(as, {
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: 'not-a-jwt',
      actor_token_type: JWT_TOKEN_TYPE,
    });

    expect([badType.status, badType.body.error]).toEqual([400, 'invalid_request']);
    expect([badActor.status, badActor.body.error]).toEqual([400, 'invalid_request']);
  });

  it('answers invalid_target for a resource that is not an absolute URI', async () => {
    const as = await start();
    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['x'] });

    const { status, body } = await exchange(as, {
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      resource: '/relative',
    });

    expect(status).toBe(400);
    expect(body.error).toBe('invalid_target');
  });

  it('answers 401 invalid_client for a wrong secret and records it without the secret', async () => {
    const as = await start();
    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['x'] });

    const basicAuth = await exchange(
      as,
      { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE },
      { authorization: basic('basic-client', 'wrong') },
    );
    const postAuth = await exchange(
      as,
      {
        client_id: 'post-client',
        client_secret: 'wrong',
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
      },
      {},
    );

    expect([basicAuth.status, basicAuth.body.error]).toEqual([401, 'invalid_client']);
    expect([postAuth.status, postAuth.body.error]).toEqual([401, 'invalid_client']);
    expect(as.exchanges.map((record) => [record.clientId, record.outcome])).toEqual([
      ['basic-client', 'invalid_client'],
      ['post-client', 'invalid_client'],
    ]);
    expect(as.exchanges[1]?.params).not.toHaveProperty('client_secret');
  });

  it('records every exchange in order with its parameters and outcome', async () => {
    const as = await start();
    const subjectToken = await as.issueSubjectToken({ sub: 'alice', scope: ['x'] });

    await exchange(as, { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, audience: ['a1', 'a2'] });
    await exchange(as, { subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, scope: 'y' });

    expect(as.exchanges).toEqual([
      {
        clientId: 'basic-client',
        params: {
          grant_type: GRANT,
          subject_token: subjectToken,
          subject_token_type: ACCESS_TOKEN_TYPE,
          audience: 'a1 a2',
        },
        outcome: 'issued',
      },
      {
        clientId: 'basic-client',
        params: { grant_type: GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, scope: 'y' },
        outcome: 'invalid_scope',
      },
    ]);
  });
});
