import { describe, expect, it } from 'vitest';
import { stripCredentials } from '../../src/proxy/strip-credentials.js';

describe('stripCredentials', () => {
  it('removes listed headers and cookies, keeps the rest in order', () => {
    const headers = { 'x-user-token': 't', 'x-other': 'o', cookie: 'a=1; session=secret; b=2;  sid=x' };
    stripCredentials(headers, { headers: ['x-user-token'], cookies: new Set(['session', 'sid']) });
    expect(headers).toEqual({ 'x-other': 'o', cookie: 'a=1; b=2' });
  });

  it('cookie names are case-sensitive (RFC 6265 §5.4) and a cookie without "=" is matched by name', () => {
    const headers: Record<string, string> = { cookie: 'Session=keep; session' };
    stripCredentials(headers, { headers: [], cookies: new Set(['session']) });
    expect(headers.cookie).toBe('Session=keep');
  });

  it('drops the cookie header when nothing is left', () => {
    const headers: Record<string, string> = { cookie: 'session=1' };
    stripCredentials(headers, { headers: [], cookies: new Set(['session']) });
    expect(headers.cookie).toBeUndefined();
  });
});
