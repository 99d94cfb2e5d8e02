import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { metadataUrls, parseMetadata } from '../../src/auth/discovery.js';
import { checkIssuedToken } from '../../src/auth/issued-token-checks.js';
import { CLIENT_ASSERTION_TYPE, privateKeyJwt } from '../../src/auth/private-key-jwt.js';
import type { ExchangeRequest, IssuedToken } from '../../src/auth/token-exchange.js';
import { describeSubject } from '../../src/auth/token-service.js';
import { parseSigningKey } from '../../src/config/signing-key.js';
import { TokenExchangeError } from '../../src/errors.js';
import { makeJwt } from '../helpers/fake-as.js';
import { manualClock } from '../helpers/start-proxy.js';

describe('discovery URLs and metadata', () => {
  it('RFC 8414 inserts the well-known segment before the issuer path; OIDC appends it', () => {
    expect(metadataUrls('https://as.example')).toEqual([
      'https://as.example/.well-known/oauth-authorization-server',
      'https://as.example/.well-known/openid-configuration',
    ]);
    expect(metadataUrls('https://as.example/tenant/a/')).toEqual([
      'https://as.example/.well-known/oauth-authorization-server/tenant/a',
      'https://as.example/tenant/a/.well-known/openid-configuration',
    ]);
  });

  it('the issuer must match exactly (a trailing slash is a different issuer)', () => {
    const doc = JSON.stringify({ issuer: 'https://as.example/', token_endpoint: 'https://as.example/token' });
    expect(() => parseMetadata('https://as.example', 'src', doc)).toThrow(/does not match/);
  });

  it('token_endpoint must be an http(s) URL', () => {
    for (const te of [undefined, 'javascript:alert(1)', '/token', 'https://user:pw@as.example/token']) {
      expect(() =>
        parseMetadata(
          'https://as.example',
          'src',
          JSON.stringify({ issuer: 'https://as.example', token_endpoint: te }),
        ),
      ).toThrow(/token_endpoint/);
    }
  });
});

describe('private_key_jwt assertion', () => {
  it('iss = sub = client id, aud = token endpoint, unique jti, 60 s exp, alg and kid from the key', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const key = parseSigningKey(JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'k1' }));
    expect(key.alg).toBe('ES256');
    const clock = manualClock(1_700_000_000_000);
    const auth = privateKeyJwt({ clientId: 'agent', key, audience: () => 'https://as.example/token', clock });
    const forms = [new URLSearchParams(), new URLSearchParams()];
    for (const f of forms) await auth.apply(f, {});
    const [a, b] = forms.map((f) => f.get('client_assertion')!);
    expect(forms[0]!.get('client_assertion_type')).toBe(CLIENT_ASSERTION_TYPE);
    expect(forms[0]!.get('client_id')).toBe('agent');
    expect(decodeProtectedHeader(a!)).toEqual({ alg: 'ES256', typ: 'JWT', kid: 'k1' });
    const claims = decodeJwt(a!);
    expect(claims).toMatchObject({
      iss: 'agent',
      sub: 'agent',
      aud: 'https://as.example/token',
      iat: 1_700_000_000,
      exp: 1_700_000_060,
    });
    expect(claims.jti).not.toBe(decodeJwt(b!).jti);
  });

  it('picks the alg from the key type', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    expect(parseSigningKey(await exportPKCS8(rsa.privateKey))).toMatchObject({ alg: 'RS256', kid: undefined });
    const ed = await generateKeyPair('EdDSA', { extractable: true });
    expect(parseSigningKey(await exportPKCS8(ed.privateKey)).alg).toBe('EdDSA');
    const p384 = await generateKeyPair('ES384', { extractable: true });
    expect(parseSigningKey(await exportPKCS8(p384.privateKey)).alg).toBe('ES384');
  });

  it('refuses symmetric keys, short RSA keys and an alg that does not fit the key', async () => {
    expect(() => parseSigningKey(JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }))).toThrow(
      /no private part|not a private key/,
    );
    const shortPem = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(() => parseSigningKey(shortPem)).toThrow(/shorter than 2048/);
    const ec = await generateKeyPair('ES256', { extractable: true });
    const ecJwk = await exportJWK(ec.privateKey);
    expect(() => parseSigningKey(JSON.stringify({ ...ecJwk, alg: 'ES512' }))).toThrow(/does not fit/);
  });
});

describe('issued-token checks (unit)', () => {
  const req: ExchangeRequest = {
    subjectToken: 's',
    subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    scopes: ['a'],
    audience: 'https://api',
  };
  const issuedToken = (accessToken: string): IssuedToken => ({
    accessToken,
    issuedTokenType: req.requestedTokenType,
    tokenType: 'Bearer',
    expiresIn: 60,
    scopes: ['a'],
  });

  it('passes a matching token and reports a mismatch as outcome rejected / 502', async () => {
    const subject = describeSubject(await makeJwt({ sub: 'alice', exp: 2_000_000_000 }));
    expect(() =>
      checkIssuedToken(
        issuedToken(makeJwtSync({ sub: 'alice', aud: 'https://api', exp: 1_999_999_000 })),
        req,
        subject,
      ),
    ).not.toThrow();
    const err = (() => {
      try {
        checkIssuedToken(issuedToken(makeJwtSync({ sub: 'alice', aud: 'https://other' })), req, subject);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TokenExchangeError);
    expect(err).toMatchObject({ outcome: 'rejected', status: 502, code: 'bad_gateway' });
  });

  it('an opaque subject token skips the sub and exp comparisons', () => {
    const subject = describeSubject('opaque-subject');
    expect(() =>
      checkIssuedToken(
        issuedToken(makeJwtSync({ sub: 'anyone', aud: 'https://api', exp: 4_000_000_000 })),
        req,
        subject,
      ),
    ).not.toThrow();
  });
});

/** An unsigned-looking JWT (decode only; the checks never verify signatures). */
function makeJwtSync(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'RS256' })}.${b64(claims)}.c2ln`;
}
