import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import type { ProxyError } from '../../src/errors.js';
import { checkRequestTarget } from '../../src/routing/request-target.js';
import { RouteTable } from '../../src/routing/route-table.js';

function table(routes: Array<Record<string, unknown>>): RouteTable {
  const cfg = resolveConfig({
    authorizationServer: { tokenEndpoint: 'http://as/token', clientId: 'a', clientAuth: 'none' },
    routes: routes.map((r, i) => ({ name: `r${i}`, upstream: 'http://up', ...r })),
  });
  return new RouteTable(cfg.routes);
}

describe('RouteTable', () => {
  const t = table([
    { match: { pathPrefix: '/api' } },
    { match: { pathPrefix: '/api/admin' }, stripPrefix: true },
    { match: { host: 'docs.localhost' } },
  ]);

  it('picks the longest prefix on a segment boundary', () => {
    expect(t.match('x', '/api/users')?.route.name).toBe('r0');
    expect(t.match('x', '/api/admin/x?y=1')).toMatchObject({ forwardPath: '/x?y=1' });
    expect(t.match('x', '/api/admin')?.forwardPath).toBe('/');
    expect(t.match('x', '/api')?.route.name).toBe('r0');
    expect(t.match('x', '/apix')).toBeUndefined();
    expect(t.match('x', '/api/adminx')?.route.name).toBe('r0');
  });

  it('host routes win and ignore the port and case', () => {
    expect(t.match('Docs.Localhost:8080', '/api/x')?.route.name).toBe('r2');
  });

  it('does not strip by default', () => {
    expect(t.match(undefined, '/api/users?q')?.forwardPath).toBe('/api/users?q');
  });
});

describe('checkRequestTarget', () => {
  const bad = (url: string, method = 'GET') => {
    try {
      checkRequestTarget(method, url);
      return undefined;
    } catch (err) {
      return (err as ProxyError).code;
    }
  };

  it('accepts origin-form', () => {
    expect(bad('/a/b.txt?x=../y')).toBeUndefined();
    expect(bad('/a/%20b')).toBeUndefined();
  });

  it('refuses absolute-form, authority-form, asterisk-form and CONNECT', () => {
    expect(bad('http://evil.example/a')).toBe('invalid_request');
    expect(bad('evil.example:443')).toBe('invalid_request');
    expect(bad('*', 'OPTIONS')).toBe('invalid_request');
    expect(bad('//evil.example/a')).toBe('invalid_request');
    expect(bad('evil.example:443', 'CONNECT')).toBe('method_not_allowed');
  });

  it('refuses dot segments hidden behind path parameters (..;/ as servlet containers read it)', () => {
    for (const url of ['/api/..;/admin', '/api/..;jsessionid=x/admin', '/api/%2e%2e;/admin', '/api/.;/x']) {
      expect(bad(url), url).toBe('invalid_request');
    }
    expect(bad('/api/a;b=c/x')).toBeUndefined();
  });

  it('refuses dot segments, encoded or not, and encoded slashes', () => {
    for (const url of [
      '/api/../admin',
      '/api/./x',
      '/api/%2e%2e/admin',
      '/api/%2E./x',
      '/api/.%2e',
      '/api/a%2fb',
      '/api/a\\b',
      '/api/%zz',
    ]) {
      expect(bad(url), url).toBe('invalid_request');
    }
  });
});
