import { describe, expect, it } from 'vitest';
import { clientSecretBasic, clientSecretPost } from '../../src/auth/client-auth.js';
import { buildExchangeForm, type ExchangeRequest, interpret } from '../../src/auth/token-exchange.js';
import type { TokenExchangeError } from '../../src/errors.js';

const req: ExchangeRequest = {
  subjectToken: 'user-token',
  subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  scopes: ['a:read', 'b:write'],
  audience: 'https://aud',
  resource: 'https://res/',
};

function fails(status: number, body: unknown, r: ExchangeRequest = req): TokenExchangeError {
  try {
    interpret(status, JSON.stringify(body), r);
  } catch (err) {
    return err as TokenExchangeError;
  }
  throw new Error('did not fail');
}

describe('RFC 8693 request', () => {
  it('carries every parameter', () => {
    const form = buildExchangeForm({
      ...req,
      actorToken: 'actor',
      actorTokenType: 'urn:ietf:params:oauth:token-type:jwt',
    });
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'user-token',
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'a:read b:write',
      audience: 'https://aud',
      resource: 'https://res/',
      actor_token: 'actor',
      actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
  });

  it('client_secret_basic form-encodes id and secret before base64 (RFC 6749 §2.3.1)', () => {
    const headers: Record<string, string> = {};
    clientSecretBasic('agent:one', "p@ss word+~!'()*").apply(new URLSearchParams(), headers);
    const decoded = Buffer.from(headers.authorization!.slice(6), 'base64').toString();
    expect(decoded).toBe('agent%3Aone:p%40ss+word%2B%7E%21%27%28%29*');
  });

  it('client_secret_post puts the credentials in the body', () => {
    const form = new URLSearchParams();
    clientSecretPost('agent', 's').apply(form, {});
    expect(form.get('client_id')).toBe('agent');
    expect(form.get('client_secret')).toBe('s');
  });
});

describe('RFC 8693 response', () => {
  it('accepts a Bearer token with a subset scope', () => {
    const t = interpret(
      200,
      JSON.stringify({
        access_token: 'x',
        token_type: 'Bearer',
        expires_in: 300,
        scope: 'a:read',
        issued_token_type: req.requestedTokenType,
      }),
      req,
    );
    expect(t).toMatchObject({ accessToken: 'x', expiresIn: 300, scopes: ['a:read'] });
  });

  it('accepts N_A token type (RFC 8693 §2.2.1) and an omitted scope as the requested one', () => {
    const t = interpret(
      200,
      JSON.stringify({ access_token: 'x', token_type: 'N_A', issued_token_type: req.requestedTokenType }),
      req,
    );
    expect(t.scopes).toEqual(req.scopes);
    expect(t.expiresIn).toBeUndefined();
  });

  it('rejects a wider scope, a foreign token type, a wrong issued_token_type and bad expires_in', () => {
    const ok = { access_token: 'x', token_type: 'Bearer', issued_token_type: req.requestedTokenType };
    expect(fails(200, { ...ok, scope: 'a:read admin' })).toMatchObject({ outcome: 'rejected', status: 502 });
    expect(fails(200, { ...ok, token_type: 'DPoP' }).outcome).toBe('rejected');
    expect(fails(200, { ...ok, issued_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }).outcome).toBe(
      'rejected',
    );
    expect(fails(200, { ...ok, expires_in: -1 }).outcome).toBe('rejected');
    expect(fails(200, { token_type: 'Bearer' }).outcome).toBe('rejected');
  });

  it('maps AS errors to the agent-facing codes of docs/errors.md', () => {
    expect(fails(400, { error: 'invalid_grant' })).toMatchObject({
      code: 'invalid_token',
      status: 401,
      outcome: 'invalid_grant',
    });
    expect(fails(400, { error: 'invalid_scope' })).toMatchObject({
      code: 'insufficient_scope',
      status: 403,
      outcome: 'invalid_scope',
    });
    expect(fails(400, { error: 'invalid_target' })).toMatchObject({ status: 403, outcome: 'invalid_target' });
    expect(fails(400, { error: 'unauthorized_client' })).toMatchObject({ status: 403, outcome: 'error' });
    expect(fails(401, { error: 'invalid_client' })).toMatchObject({ status: 502, outcome: 'invalid_client' });
    expect(fails(503, {})).toMatchObject({
      code: 'temporarily_unavailable',
      status: 503,
      outcome: 'unavailable',
      retryAfterSeconds: 5,
    });
    expect(fails(400, { error: 'unsupported_grant_type' })).toMatchObject({ status: 502, outcome: 'error' });
  });

  it('keeps the AS description for operators only', () => {
    const err = fails(400, { error: 'invalid_scope', error_description: 'user lacks admin' });
    expect(err.description).not.toContain('admin');
    expect(err.detail).toContain('user lacks admin');
  });
});
