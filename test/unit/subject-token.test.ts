import { describe, expect, it } from 'vitest';
import { takeSubjectToken } from '../../src/auth/subject-token.js';
import type { ProxyError } from '../../src/errors.js';

function take(headers: Record<string, string>, raw?: string[]) {
  const h = { ...headers };
  const rawHeaders = raw ?? Object.entries(headers).flat();
  try {
    return { token: takeSubjectToken(h, rawHeaders, 'authorization'), headers: h };
  } catch (err) {
    return { code: (err as ProxyError).code, headers: h };
  }
}

describe('takeSubjectToken', () => {
  it('returns the bearer token and removes the header', () => {
    const r = take({ authorization: 'Bearer abc.def-ghi_~+/==', accept: '*/*' });
    expect(r.token).toBe('abc.def-ghi_~+/==');
    expect(r.headers).toEqual({ accept: '*/*' });
  });

  it('accepts the scheme case-insensitively', () => {
    expect(take({ authorization: 'bearer xyz' }).token).toBe('xyz');
  });

  it('removes the header even when it is refused', () => {
    expect(take({ authorization: 'Basic abc' })).toEqual({ code: 'invalid_token', headers: {} });
  });

  it('refuses missing, empty and malformed tokens', () => {
    expect(take({}).code).toBe('invalid_token');
    expect(take({ authorization: 'Bearer ' }).code).toBe('invalid_token');
    expect(take({ authorization: 'Bearer a,b' }).code).toBe('invalid_token');
    expect(take({ authorization: `Bearer ${'a'.repeat(20_000)}` }).code).toBe('invalid_token');
  });

  it('refuses two Authorization headers (Node keeps only the first)', () => {
    expect(take({ authorization: 'Bearer a' }, ['Authorization', 'Bearer a', 'authorization', 'Bearer b']).code).toBe(
      'invalid_request',
    );
  });
});
