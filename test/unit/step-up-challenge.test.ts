import { describe, expect, it } from 'vitest';
import { insufficientScope, parseChallenges } from '../../src/step-up/bearer-challenge.js';

describe('WWW-Authenticate parsing (RFC 9110 §11.6.1)', () => {
  it('parses one Bearer challenge with quoted and token values', () => {
    const [c] = parseChallenges('Bearer realm="example", error=insufficient_scope, scope="a b"')!;
    expect(c!.scheme).toBe('bearer');
    expect(Object.fromEntries(c!.params)).toEqual({ realm: 'example', error: 'insufficient_scope', scope: 'a b' });
  });

  it('parses several challenges in one field, with token68 and empty list elements', () => {
    const cs = parseChallenges('Negotiate abc+/==, , Basic realm="x, y", Bearer error="invalid_token"')!;
    expect(cs.map((c) => c.scheme)).toEqual(['negotiate', 'basic', 'bearer']);
    expect(cs[0]!.token68).toBe('abc+/==');
    expect(cs[1]!.params.get('realm')).toBe('x, y');
  });

  it('joins repeated header fields', () => {
    const cs = parseChallenges(['Basic realm="a"', 'Bearer scope="s"'])!;
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
  });

  it('accepts BWS around "=", case-insensitive names, and quoted-pairs', () => {
    const [c] = parseChallenges('BEARER Error = "insufficient_scope" ,SCOPE="a \\"b\\""')!;
    expect(c!.params.get('error')).toBe('insufficient_scope');
    expect(c!.params.get('scope')).toBe('a "b"');
  });

  it('a scheme alone is a challenge without parameters', () => {
    expect(parseChallenges('Bearer')).toEqual([{ scheme: 'bearer', token68: undefined, params: new Map() }]);
  });

  it.each([
    ['unterminated quoted string', 'Bearer scope="a b'],
    ['duplicate parameter', 'Bearer scope="a", scope="b"'],
    ['parameters without comma', 'Bearer error="insufficient_scope" scope="a"'],
    ['missing value', 'Bearer scope='],
    ['control character in quotes', 'Bearer scope="a\u0001"'],
    ['leading "="', '=Bearer'],
    ['no space after the scheme', 'Bearer\tscope="a"'],
  ])('rejects a malformed field: %s', (_name, value) => {
    expect(parseChallenges(value)).toBeUndefined();
  });
});

describe('insufficient_scope challenge (RFC 6750 §3)', () => {
  it('returns the scopes of a Bearer insufficient_scope challenge', () => {
    expect(
      insufficientScope('Bearer realm="api", error="insufficient_scope", scope="billing:write  billing:read"'),
    ).toEqual(['billing:write', 'billing:read']);
  });

  it('finds the Bearer challenge among others', () => {
    expect(insufficientScope('Basic realm="x", Bearer error="insufficient_scope", scope="a"')).toEqual(['a']);
  });

  it.each([
    ['no header', undefined],
    ['another error', 'Bearer error="invalid_token", scope="a"'],
    ['no scope', 'Bearer error="insufficient_scope"'],
    ['empty scope', 'Bearer error="insufficient_scope", scope=""'],
    ['a scope with a forbidden character', 'Bearer error="insufficient_scope", scope="a\\"b"'],
    ['another scheme', 'DPoP error="insufficient_scope", scope="a"'],
    [
      'two insufficient_scope challenges (ambiguous)',
      'Bearer error="insufficient_scope", scope="a", Bearer error="insufficient_scope", scope="b"',
    ],
    ['a malformed field', 'Bearer error="insufficient_scope", scope="a'],
  ])('names nothing for %s', (_name, value) => {
    expect(insufficientScope(value)).toBeUndefined();
  });
});
