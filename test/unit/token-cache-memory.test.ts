import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenService } from '../../src/auth/token-service.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouteMetrics } from '../../src/observability/route-metrics.js';
import { RouteTable } from '../../src/routing/route-table.js';
import { manualClock } from '../helpers/start-proxy.js';

/**
 * Memory per cache entry (target: an entry costs at most its token + 256 B, BENCHMARKS.md). Every entry
 * holds one shared delegated token here, so the heap growth per entry is the cache's own overhead:
 * key, entry object, lru-cache slots, and what is kept per user (claims memo, revocation index).
 * `bench/memory.ts` measures the same at 100,000 entries.
 */
const ENTRIES = 30_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heap(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function jwt(n: number, nowSeconds: number): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = {
    iss: 'https://idp.example',
    sub: `user-${n}`,
    email: `user-${n}@example.com`,
    iat: nowSeconds,
    exp: nowSeconds + 7200,
  };
  return `${enc({ alg: 'RS256' })}.${enc(claims)}.${'s'.repeat(342)}`;
}

async function overheadPerEntry(userToken: (n: number, nowSeconds: number) => string): Promise<number> {
  const shared = randomBytes(600).toString('base64url'); // 800 characters, one string for every entry
  const client: TokenExchangeClient = {
    exchange: async (req) => ({
      accessToken: shared,
      issuedTokenType: req.requestedTokenType,
      tokenType: 'Bearer',
      expiresIn: 3600,
      scopes: [...req.scopes],
    }),
  };
  const routes = new RouteTable([
    {
      name: 'a',
      match: { pathPrefix: '/a' },
      upstream: 'http://127.0.0.1:1',
      stripPrefix: false,
      scopes: ['documents:read'],
      requestedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      timeoutMs: 1000,
      stripHeaders: [],
      stripCookies: [],
      websocket: { enabled: true },
    },
  ]);
  const route = routes.routes[0]!;
  const log = pino({ level: 'silent' });
  const clock = manualClock();
  const nowSeconds = Math.floor(clock.now() / 1000);
  const before = heap();
  const tokenMetrics = createMetrics({ registry: new Registry(), version: 't', defaultMetrics: false });
  const tokens = new TokenService({
    client,
    cache: { refreshAheadSeconds: 30, maxTtlSeconds: 3600, maxEntries: ENTRIES, clockSkewSeconds: 5 },
    subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    clock,
    metrics: tokenMetrics,
    routeMetrics: createRouteMetrics(tokenMetrics),
  });
  for (let i = 0; i < ENTRIES; i += 1000) {
    const jobs = [];
    for (let j = i; j < i + 1000; j++)
      jobs.push(
        tokens.obtain({
          route,
          subject: tokens.describe(userToken(j, nowSeconds)),
          scopes: route.scopes,
          log,
          cacheable: true,
        }),
      );
    await Promise.all(jobs);
  }
  const bytes = (heap() - before) / ENTRIES;
  // Checked after the measurement, so the service is still alive during it.
  expect(tokens.cache.size).toBe(ENTRIES);
  return bytes;
}

describe('token cache memory per entry', () => {
  it('costs at most 256 B besides the token with opaque user tokens', async () => {
    const bytes = await overheadPerEntry((n) => `opaque-${n}-${'x'.repeat(700)}`);
    console.log(`opaque user tokens: ${Math.round(bytes)} B per entry besides the token`);
    expect(bytes).toBeLessThanOrEqual(256);
  });

  it('costs at most 640 B besides the token with JWT user tokens (claims memo and revocation index included)', async () => {
    const bytes = await overheadPerEntry(jwt);
    console.log(`JWT user tokens: ${Math.round(bytes)} B per entry besides the token`);
    expect(bytes).toBeLessThanOrEqual(640);
  });
});
