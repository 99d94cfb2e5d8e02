import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { checkIdJag, ID_JAG_TOKEN_TYPE, ID_JAG_TYP } from '../../src/auth/id-jag.js';
import { TokenExchangeError } from '../../src/errors.js';

const ISSUER = 'https://as.partner.example';
const { privateKey } = await generateKeyPair('ES256');
const now = Date.now();

async function jag(
  header: { typ?: string } = { typ: ID_JAG_TYP },
  claims: { aud?: string; exp?: number } = {},
): Promise<string> {
  const jwt = new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'ES256', ...header })
    .setAudience(claims.aud ?? ISSUER);
  if (claims.exp !== 0) jwt.setExpirationTime(claims.exp ?? Math.floor(now / 1000) + 300);
  return jwt.sign(privateKey);
}

function issued(accessToken: string, over: { issuedTokenType?: string; tokenType?: string } = {}) {
  return {
    accessToken,
    issuedTokenType: over.issuedTokenType ?? ID_JAG_TOKEN_TYPE,
    tokenType: over.tokenType ?? 'N_A',
    expiresIn: 300,
    scopes: [],
  };
}

function detailOf(f: () => void): string | undefined {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(TokenExchangeError);
    expect((err as TokenExchangeError).outcome).toBe('rejected');
    return (err as TokenExchangeError).detail;
  }
  return undefined;
}

describe('checkIdJag (what the IdP answered must be an ID-JAG for that resource AS)', () => {
  it('accepts a well-formed ID-JAG', async () => {
    const good = await jag();
    expect(() => checkIdJag(issued(good), ISSUER, now)).not.toThrow();
  });

  it('refuses the wrong issued_token_type, token_type, typ, aud, or an expired one', async () => {
    const good = await jag();
    expect(
      detailOf(() =>
        checkIdJag(issued(good, { issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token' }), ISSUER, now),
      ),
    ).toMatch(/issued_token_type/);
    expect(detailOf(() => checkIdJag(issued(good, { tokenType: 'Bearer' }), ISSUER, now))).toMatch(/token_type/);
    const wrongTyp = await jag({ typ: 'JWT' });
    expect(detailOf(() => checkIdJag(issued(wrongTyp), ISSUER, now))).toMatch(/typ/);
    const wrongAud = await jag(undefined, { aud: 'https://elsewhere.example' });
    expect(detailOf(() => checkIdJag(issued(wrongAud), ISSUER, now))).toMatch(/aud/);
    const expired = await jag(undefined, { exp: Math.floor(now / 1000) - 1 });
    expect(detailOf(() => checkIdJag(issued(expired), ISSUER, now))).toMatch(/expired/);
    const noExp = await jag(undefined, { exp: 0 });
    expect(detailOf(() => checkIdJag(issued(noExp), ISSUER, now))).toMatch(/exp/);
    expect(detailOf(() => checkIdJag(issued('not-a-jwt'), ISSUER, now))).toMatch(/not a JWT/);
  });
});
