import { describe, expect, it } from 'vitest';
import {
  csrfToken,
  issueSession,
  readSession,
  signBody,
  verifyBearer,
  verifyCsrf,
  verifySignature,
} from '../../src/step-up/signature.js';

const SECRET = 'x'.repeat(40);
const NOW = 1_700_000_000_000;
const body = Buffer.from('{"decision":"approved"}');

describe('callback signatures', () => {
  const ts = NOW / 1000;
  const sig = signBody(SECRET, ts, body);

  it('accepts a signature over timestamp and body', () => {
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, { signature: sig, timestamp: String(ts) }, body, NOW)).toBe('ok');
  });

  it('refuses another body, another timestamp, another secret', () => {
    expect(
      verifySignature(SECRET, { signature: sig, timestamp: String(ts) }, Buffer.from('{"decision":"denied"}'), NOW),
    ).toBe('bad_signature');
    expect(verifySignature(SECRET, { signature: sig, timestamp: String(ts + 1) }, body, NOW)).toBe('bad_signature');
    expect(verifySignature('y'.repeat(40), { signature: sig, timestamp: String(ts) }, body, NOW)).toBe('bad_signature');
  });

  it('refuses timestamps outside the window, malformed timestamps and missing headers', () => {
    const old = ts - 301;
    expect(verifySignature(SECRET, { signature: signBody(SECRET, old, body), timestamp: String(old) }, body, NOW)).toBe(
      'stale',
    );
    expect(verifySignature(SECRET, { signature: sig, timestamp: '1e9' }, body, NOW)).toBe('stale');
    expect(verifySignature(SECRET, { signature: undefined, timestamp: String(ts) }, body, NOW)).toBe('missing');
  });

  it('checks the bearer secret exactly', () => {
    expect(verifyBearer(SECRET, `Bearer ${SECRET}`)).toBe(true);
    expect(verifyBearer(SECRET, `bearer ${SECRET}`)).toBe(true);
    expect(verifyBearer(SECRET, `Bearer ${SECRET}x`)).toBe(false);
    expect(verifyBearer(SECRET, `Basic ${SECRET}`)).toBe(false);
    expect(verifyBearer(SECRET, undefined)).toBe(false);
  });
});

describe('approval page session and CSRF token', () => {
  it('a session cookie round-trips and expires', () => {
    const s = issueSession(SECRET, 'frank', NOW);
    expect(readSession(SECRET, s, NOW + 1000, 3600)).toEqual({ approver: 'frank', issuedAt: NOW });
    expect(readSession(SECRET, s, NOW + 3601_000, 3600)).toBeUndefined();
  });

  it('a tampered or foreign session is refused', () => {
    const s = issueSession(SECRET, 'frank', NOW);
    const [payload, mac] = s.split('.');
    const forged = Buffer.from(JSON.stringify({ a: 'mallory', t: NOW / 1000 })).toString('base64url');
    expect(readSession(SECRET, `${forged}.${mac}`, NOW, 3600)).toBeUndefined();
    expect(readSession('z'.repeat(40), s, NOW, 3600)).toBeUndefined();
    expect(readSession(SECRET, payload, NOW, 3600)).toBeUndefined();
  });

  it('the CSRF token is bound to the session and is not the session MAC', () => {
    const a = issueSession(SECRET, 'a', NOW);
    const b = issueSession(SECRET, 'b', NOW);
    expect(verifyCsrf(SECRET, a, csrfToken(SECRET, a))).toBe(true);
    expect(verifyCsrf(SECRET, a, csrfToken(SECRET, b))).toBe(false);
    expect(verifyCsrf(SECRET, a, a.split('.')[1])).toBe(false);
    expect(verifyCsrf(SECRET, a, undefined)).toBe(false);
  });
});
