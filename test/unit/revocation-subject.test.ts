import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenService } from '../../src/auth/token-service.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouteMetrics } from '../../src/observability/route-metrics.js';
import { ssfConfigurationUrl } from '../../src/revocation/ssf-discovery.js';
import { mapSubject } from '../../src/revocation/subject-id.js';
import { RouteTable } from '../../src/routing/route-table.js';
import { manualClock } from '../helpers/start-proxy.js';

function jwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'none' })}.${enc(claims)}.sig`;
}

describe('RFC 9493 subject identifiers', () => {
  it('maps iss_sub, opaque, email and a complex subject with a user member', () => {
    expect(mapSubject({ format: 'iss_sub', iss: 'https://idp', sub: 'u1' })).toEqual({
      kind: 'sub',
      sub: 'u1',
      iss: 'https://idp',
    });
    expect(mapSubject({ format: 'opaque', id: 'u2' })).toEqual({ kind: 'sub', sub: 'u2' });
    expect(mapSubject({ format: 'email', email: 'a@example.com' })).toEqual({ kind: 'email', email: 'a@example.com' });
    expect(
      mapSubject({ format: 'complex', user: { format: 'opaque', id: 'u3' }, session: { format: 'opaque', id: 's' } }),
    ).toEqual({
      kind: 'sub',
      sub: 'u3',
    });
  });

  it('reports malformed and unsupported subjects apart', () => {
    expect(mapSubject({ format: 'iss_sub', sub: 'u1' })).toMatchObject({ kind: 'malformed' });
    expect(mapSubject({ format: 'email', email: 'not-an-email' })).toMatchObject({ kind: 'malformed' });
    expect(mapSubject('u1')).toMatchObject({ kind: 'malformed' });
    expect(mapSubject({ id: 'u1' })).toMatchObject({ kind: 'malformed' });
    expect(mapSubject({ format: 'phone_number', phone_number: '+1' })).toMatchObject({ kind: 'unsupported' });
    expect(mapSubject({ format: 'complex', session: { format: 'opaque', id: 's' } })).toMatchObject({
      kind: 'unsupported',
    });
  });

  it('builds the SSF configuration URL by inserting the well-known path (SSF 1.0 §7.1)', () => {
    expect(ssfConfigurationUrl('https://idp.example.com')).toBe(
      'https://idp.example.com/.well-known/ssf-configuration',
    );
    expect(ssfConfigurationUrl('https://idp.example.com/tenant/1')).toBe(
      'https://idp.example.com/.well-known/ssf-configuration/tenant/1',
    );
  });
});

describe('subject index kept in step with the token cache', () => {
  function service(maxEntries: number, gate?: () => Promise<void>) {
    const clock = manualClock();
    let n = 0;
    const client: TokenExchangeClient = {
      exchange: async () => {
        await gate?.();
        return {
          accessToken: `delegated-${n++}`,
          issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
          tokenType: 'Bearer',
          expiresIn: 300,
          scopes: ['r'],
        };
      },
    };
    const tokenMetrics = createMetrics({ registry: new Registry(), version: 't', defaultMetrics: false });
    const tokens = new TokenService({
      client,
      cache: { refreshAheadSeconds: 30, maxTtlSeconds: 300, maxEntries, clockSkewSeconds: 5 },
      subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      clock,
      metrics: tokenMetrics,
      routeMetrics: createRouteMetrics(tokenMetrics),
    });
    const routes = new RouteTable([
      {
        name: 'a',
        match: { pathPrefix: '/a' },
        upstream: 'http://127.0.0.1:1',
        stripPrefix: false,
        scopes: ['r'],
        requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
        timeoutMs: 1000,
        stripHeaders: [],
        stripCookies: [],
        websocket: { enabled: true },
      },
      {
        name: 'b',
        match: { pathPrefix: '/b' },
        upstream: 'http://127.0.0.1:1',
        stripPrefix: false,
        scopes: ['w'],
        requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
        timeoutMs: 1000,
        stripHeaders: [],
        stripCookies: [],
        websocket: { enabled: true },
      },
    ]);
    const log = pino({ level: 'silent' });
    const obtain = (token: string, route: 'a' | 'b') => {
      const r = routes.routes.find((x) => x.name === route)!;
      return tokens.obtain({ route: r, subject: tokens.describe(token), scopes: r.scopes, log, cacheable: true });
    };
    return { tokens, obtain, clock, exchanges: () => n };
  }

  it('indexes every cached entry of a user (two routes, two tokens) and evicts them all', async () => {
    const { tokens, obtain } = service(100);
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const a1 = jwt({ sub: 'alice', iss: 'https://idp', exp, email: 'alice@example.com' });
    const a2 = jwt({ sub: 'alice', iss: 'https://idp', exp, iat: 5 });
    await obtain(a1, 'a');
    await obtain(a1, 'b');
    await obtain(a2, 'a');
    await obtain(jwt({ sub: 'bob', exp }), 'a');
    await obtain(`opaque-token-without-claims`, 'a');
    expect(tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'alice' })).toHaveLength(3);
    expect(tokens.subjectIndex.keysFor({ kind: 'email', email: 'ALICE@example.com' })).toHaveLength(2);
    expect(tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'alice', iss: 'https://other' })).toHaveLength(0);
    expect(tokens.subjectIndex.size).toBe(4); // the opaque token's entry cannot be matched, so is not indexed
    for (const key of tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'alice' }))
      expect(tokens.cache.evict(key)).toBe(true);
    expect(tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'alice' })).toHaveLength(0);
    expect(tokens.subjectIndex.size).toBe(1);
    expect(tokens.cache.size).toBe(2);
  });

  it('drops keys the cache evicts (LRU bound), invalidates, sweeps or clears', async () => {
    const { tokens, obtain, clock } = service(3);
    const exp = Math.floor(Date.now() / 1000) + 3600;
    for (let i = 0; i < 5; i++) await obtain(jwt({ sub: `u${i}`, exp }), 'a');
    expect(tokens.cache.size).toBe(3);
    expect(tokens.subjectIndex.size).toBe(3);
    expect(tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'u0' })).toEqual([]);
    expect(tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'u4' })).toHaveLength(1);
    const got = await obtain(jwt({ sub: 'u4', exp }), 'a');
    tokens.cache.invalidate(got.key, got.token);
    expect(tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'u4' })).toEqual([]);
    clock.advance(400_000);
    expect(tokens.cache.sweep()).toBe(2);
    expect(tokens.subjectIndex.size).toBe(0);
    await obtain(jwt({ sub: 'u9', exp }), 'a');
    tokens.cache.clear();
    expect(tokens.subjectIndex.size).toBe(0);
  });

  it('an eviction during the exchange lets the waiting request complete, then drops its token', async () => {
    let release!: () => void;
    let gated = true;
    const { tokens, obtain, exchanges } = service(100, () =>
      gated ? new Promise<void>((r) => (release = r)) : Promise.resolve(),
    );
    const alice = jwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 });
    const pending = obtain(alice, 'a');
    await new Promise((r) => setImmediate(r));
    const keys = tokens.subjectIndex.keysFor({ kind: 'sub', sub: 'alice' });
    expect(keys).toHaveLength(1); // indexed before the exchange
    expect(tokens.cache.evict(keys[0]!)).toBe(true);
    gated = false;
    release();
    const got = await pending; // the in-flight request completes
    expect(got.token.accessToken).toBe('delegated-0');
    await new Promise((r) => setImmediate(r));
    expect(tokens.cache.size).toBe(0);
    expect(tokens.subjectIndex.size).toBe(0);
    expect((await obtain(alice, 'a')).token.accessToken).toBe('delegated-1'); // the next one exchanges afresh
    expect(exchanges()).toBe(2);
  });
});
