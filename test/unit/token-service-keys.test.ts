import { hash } from 'node:crypto';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenService } from '../../src/auth/token-service.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouteMetrics } from '../../src/observability/route-metrics.js';
import { RouteTable } from '../../src/routing/route-table.js';
import { manualClock } from '../helpers/start-proxy.js';

function jwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'none' })}.${enc(claims)}.sig`;
}

function setup(maxEntries = 100) {
  const clock = manualClock();
  let n = 0;
  const client: TokenExchangeClient = {
    exchange: async (req) => ({
      accessToken: `delegated-${n++}`,
      issuedTokenType: req.requestedTokenType,
      tokenType: 'Bearer',
      expiresIn: 300,
      scopes: [...req.scopes],
    }),
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
  const route = (name: string, scopes: string[]) => ({
    name,
    match: { pathPrefix: `/${name}` },
    upstream: 'http://127.0.0.1:1',
    stripPrefix: false,
    scopes,
    requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    timeoutMs: 1000,
    stripHeaders: [],
    stripCookies: [],
    websocket: { enabled: true },
  });
  const routes = new RouteTable([route('a', ['r']), route('b', ['w'])]).routes;
  return { tokens, routes, clock, log: pino({ level: 'silent' }), exchanges: () => n };
}

describe('TokenService keys and the describe() memo', () => {
  const exp = Math.floor(Date.now() / 1000) + 3600;

  it('describes JWT and opaque user tokens alike, every time (hash, claims)', () => {
    const { tokens } = setup();
    const user = jwt({ sub: 'alice', iss: 'https://idp', iat: 7, exp, email: 'alice@example.com' });
    for (let i = 0; i < 2; i++) {
      expect(tokens.describe(user)).toEqual({
        token: user,
        hash: hash('sha256', user, 'base64url'),
        sub: 'alice',
        iss: 'https://idp',
        iat: 7,
        expiresAt: exp * 1000,
        email: 'alice@example.com',
      });
    }
    const opaque = 'opaque.token-value';
    for (let i = 0; i < 2; i++) {
      expect(tokens.describe(opaque)).toEqual({
        token: opaque,
        hash: hash('sha256', opaque, 'base64url'),
        sub: undefined,
        iss: undefined,
        iat: undefined,
        expiresAt: undefined,
        email: undefined,
      });
    }
  });

  it('a user dropped from the bounded memo is decoded again, with the same claims', () => {
    const { tokens } = setup(2);
    const users = ['u0', 'u1', 'u2'].map((sub) => jwt({ sub, exp }));
    for (const u of users) tokens.describe(u);
    expect(tokens.describe(users[0]!).sub).toBe('u0');
    expect(tokens.describe(users[2]!).sub).toBe('u2');
  });

  it('a stored entry is found again by the per-request key, for JWT and opaque users, per route and per scope set', async () => {
    const { tokens, routes, log, exchanges } = setup();
    const [a, b] = routes as [(typeof routes)[0], (typeof routes)[0]];
    for (const user of [jwt({ sub: 'alice', exp }), 'opaque-user-token']) {
      const before = exchanges();
      const first = await tokens.obtain({
        route: a,
        subject: tokens.describe(user),
        scopes: a.scopes,
        log,
        cacheable: true,
      });
      expect(first.result).toBe('miss');
      const hit = tokens.cached(a, tokens.describe(user), a.scopes);
      expect(hit).toMatchObject({ result: 'hit', key: first.key });
      expect(hit?.token.accessToken).toBe(first.token.accessToken);
      // Another route (other scopes) and a policy-widened scope set are other entries.
      expect(tokens.cached(b, tokens.describe(user), b.scopes)).toBeUndefined();
      const widened = ['r', 'x'];
      const policy = await tokens.obtain({
        route: a,
        subject: tokens.describe(user),
        scopes: widened,
        log,
        cacheable: true,
      });
      expect(policy.key).not.toBe(first.key);
      expect(tokens.cached(a, tokens.describe(user), ['r', 'x'])).toMatchObject({ result: 'hit', key: policy.key });
      expect(exchanges() - before).toBe(2);
    }
    // Two users never share an entry.
    expect(tokens.cache.size).toBe(4);
  });
});
