import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGuard, type Guard, GuardError } from '../../src/guard/index.js';

const ISSUER = 'https://as.test';
const AUDIENCE = 'https://mcp.test';

let server: Server;
let key: CryptoKey;
let guard: Guard;
let jwksUri: string;

beforeEach(async () => {
  const pair = await generateKeyPair('ES256');
  key = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  guard = createGuard({ issuer: ISSUER, audience: AUDIENCE, jwksUri });
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function token(
  claims: Record<string, unknown> = {},
  options: { audience?: string; issuer?: string; expiresIn?: number; signWith?: CryptoKey } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'mcp:tools:read mcp:tools:write', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setSubject('alice')
    .setIssuedAt(now - 60)
    .setExpirationTime(now + (options.expiresIn ?? 300))
    .sign(options.signWith ?? key);
}

async function failure(promise: Promise<unknown>): Promise<GuardError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GuardError);
  return err as GuardError;
}

describe('guard.verify', () => {
  it('accepts a valid delegated token and returns its claims', async () => {
    const claims = await guard.verify(`Bearer ${await token()}`);
    expect(claims).toMatchObject({ sub: 'alice', aud: AUDIENCE, iss: ISSUER, scope: 'mcp:tools:read mcp:tools:write' });
  });

  it('refuses a token for another audience with invalid_token (401)', async () => {
    const err = await failure(guard.verify(`Bearer ${await token({}, { audience: 'https://other.test' })}`));
    expect(err.code).toBe('invalid_token');
    expect(err.status).toBe(401);
    expect(err.message).toBe("the token's aud claim is not accepted");
    expect(err.wwwAuthenticate).toBe('Bearer realm="mcp", error="invalid_token"');
    expect((err.cause as { code?: string }).code).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  it('refuses an expired token with invalid_token (401)', async () => {
    const err = await failure(guard.verify(`Bearer ${await token({}, { expiresIn: -30 })}`));
    expect(err.code).toBe('invalid_token');
    expect(err.message).toBe('the token has expired');
    expect((err.cause as { code?: string }).code).toBe('ERR_JWT_EXPIRED');
  });

  it('refuses a token that expired within the clock tolerance only after it', async () => {
    const t = await token({}, { expiresIn: 10 });
    const later = (s: number) =>
      createGuard({ issuer: ISSUER, audience: AUDIENCE, jwksUri, now: () => new Date(Date.now() + s * 1000) });
    await expect(later(12).verify(`Bearer ${t}`)).resolves.toMatchObject({ sub: 'alice' });
    expect((await failure(later(20).verify(`Bearer ${t}`))).code).toBe('invalid_token');
  });

  it('refuses a token from another issuer or signed with another key', async () => {
    expect((await failure(guard.verify(`Bearer ${await token({}, { issuer: 'https://evil.test' })}`))).code).toBe(
      'invalid_token',
    );
    const other = await generateKeyPair('ES256');
    expect((await failure(guard.verify(`Bearer ${await token({}, { signWith: other.privateKey })}`))).code).toBe(
      'invalid_token',
    );
  });

  it('checks the typ header when asked to (RFC 9068 access tokens)', async () => {
    const strict = createGuard({ issuer: ISSUER, audience: AUDIENCE, jwksUri, typ: 'at+jwt' });
    await expect(strict.verify(`Bearer ${await token()}`)).resolves.toMatchObject({ sub: 'alice' });
    const idTokenLike = await new SignJWT({ scope: 'mcp:tools:read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(key);
    expect((await failure(strict.verify(`Bearer ${idTokenLike}`))).code).toBe('invalid_token');
  });

  it('refuses an unsigned token', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'none' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: 9e9 })}.`;
    expect((await failure(guard.verify(`Bearer ${unsigned}`))).code).toBe('invalid_token');
  });

  it('answers a request without credentials with a bare challenge (RFC 6750 §3.1)', async () => {
    const err = await failure(guard.verify(undefined));
    expect(err.status).toBe(401);
    expect(err.wwwAuthenticate).toBe('Bearer realm="mcp"');
  });

  it('answers a malformed Authorization header with invalid_request (400)', async () => {
    const err = await failure(guard.verify('Basic YWxpY2U6cHc='));
    expect(err.code).toBe('invalid_request');
    expect(err.status).toBe(400);
  });
});

describe('guard.requireScopes', () => {
  it('passes when every scope is granted', async () => {
    const claims = await guard.verify(`Bearer ${await token()}`);
    expect(() => guard.requireScopes(claims, ['mcp:tools:write'])).not.toThrow();
  });

  it('throws insufficient_scope (403) with the scope challenge when one is missing', async () => {
    const claims = await guard.verify(`Bearer ${await token()}`);
    let err: unknown;
    try {
      guard.requireScopes(claims, ['mcp:tools:write', 'files:delete']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuardError);
    expect(err).toMatchObject({
      code: 'insufficient_scope',
      status: 403,
      scope: ['mcp:tools:write', 'files:delete'],
      wwwAuthenticate: 'Bearer realm="mcp", error="insufficient_scope", scope="mcp:tools:write files:delete"',
    });
  });

  it('does not read scopes from a token without a scope claim', () => {
    expect(() => guard.requireScopes({ sub: 'alice' }, ['mcp:tools:read'])).toThrow(GuardError);
  });
});
