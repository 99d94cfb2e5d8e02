import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { compileStepUp, matchRules, pathForms } from '../../src/step-up/rules.js';
import { methodOverridesOf } from '../../src/step-up/step.js';

const step = compileStepUp({
  scopes: ['billing:write', 'payments:send'],
  rules: [
    { method: 'DELETE', pathPrefix: '/invoices' },
    { method: ['POST', 'PUT'], pathPrefix: '/payments/', scopes: ['payments:send'] },
    { tool: 'transfer_funds', scopes: ['payments:send'] },
  ],
  onChallenge: false,
});

const match = (method: string, path: string, tools?: string[], methodOverrides?: string[]) =>
  matchRules(step, { method, path, tools, methodOverrides });

describe('step-up rules', () => {
  it('matches method and path prefix on segment boundaries; a rule without scopes asks for all of the allow-list', () => {
    expect(match('DELETE', '/invoices')).toEqual({ scopes: ['billing:write', 'payments:send'], tools: [] });
    expect(match('DELETE', '/invoices/42?x=1')?.scopes).toEqual(['billing:write', 'payments:send']);
    expect(match('DELETE', '/invoices-old/42')).toBeUndefined();
    expect(match('GET', '/invoices/42')).toBeUndefined();
  });

  it('a rule with scopes asks for those only; any of its methods matches', () => {
    expect(match('PUT', '/payments/1')?.scopes).toEqual(['payments:send']);
    expect(match('POST', '/payments')?.scopes).toEqual(['payments:send']);
    expect(match('GET', '/payments/1')).toBeUndefined();
  });

  it('matches MCP tool names (and reports them)', () => {
    expect(match('POST', '/mcp', ['search', 'transfer_funds'])).toEqual({
      scopes: ['payments:send'],
      tools: ['transfer_funds'],
    });
    expect(match('POST', '/mcp', ['search'])).toBeUndefined();
    expect(match('POST', '/mcp', undefined)).toBeUndefined();
  });

  it.each([
    ['upper case', '/INVOICES/1'],
    ['percent-encoded letters', '/%69nvoices/1'],
    ['repeated slashes', '//invoices//1'],
    ['a ;path parameter', '/invoices;jsessionid=x/1'],
    ['an encoded ;path parameter', '/invoices%3Bx/1'],
  ])('path variants an upstream may read as the ruled path still match: %s', (_name, path) => {
    expect(match('DELETE', path)).toBeDefined();
  });

  it('pathForms keeps the query out', () => {
    expect(pathForms('/a/b?c=/invoices')).toEqual([['a', 'b']]);
  });

  it('security: a method rule also matches the method an upstream may act on instead (override header, _method, HEAD as GET)', () => {
    const req = (method: string, headers: Record<string, string> = {}) =>
      ({ method, headers }) as unknown as IncomingMessage;
    // Rails, Laravel/Symfony and Express method-override route a POST with these as a DELETE.
    for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
      const overrides = methodOverridesOf(req('POST', { [header]: 'delete' }), '/invoices/1', undefined);
      expect(match('POST', '/invoices/1', undefined, overrides), header).toBeDefined();
    }
    expect(
      match(
        'POST',
        '/invoices/1?_method=DELETE',
        undefined,
        methodOverridesOf(req('POST'), '/invoices/1?_method=DELETE', undefined),
      ),
    ).toBeDefined();
    const form = Buffer.from('a=1&_method=delete');
    expect(match('POST', '/invoices/1', undefined, methodOverridesOf(req('POST'), '/invoices/1', form))).toBeDefined();
    const getRule = compileStepUp({
      scopes: ['reports:all'],
      rules: [{ method: 'GET', pathPrefix: '/export' }],
      onChallenge: false,
    });
    expect(
      matchRules(getRule, {
        method: 'HEAD',
        path: '/export',
        tools: undefined,
        methodOverrides: methodOverridesOf(req('HEAD'), '/export', undefined),
      }),
    ).toBeDefined();
    // Without any override nothing changes.
    expect(methodOverridesOf(req('POST'), '/invoices/1?x=1', undefined)).toEqual([]);
    expect(match('POST', '/invoices/1', undefined, [])).toBeUndefined();
  });
});
