import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type ExchangeRequest, interpret, type TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenService } from '../../src/auth/token-service.js';
import { resolveConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouteMetrics } from '../../src/observability/route-metrics.js';
import type { Clock } from '../../src/pipeline/clock.js';
import { type Route, RouteTable } from '../../src/routing/route-table.js';

/** A clock the simulation moves by hand. */
export interface ManualClock extends Clock {
  set(ms: number): void;
}

export function manualClock(start: number): ManualClock {
  let now = start;
  return {
    now: () => now,
    set(ms) {
      now = ms;
    },
  };
}

/** Routes through the real config validation and route compiler. */
export function routesOf(routes: Record<string, unknown>[]): readonly Route[] {
  const secret = join(mkdtempSync(join(tmpdir(), 'dp-bench-')), 'secret');
  writeFileSync(secret, 'x');
  const config = resolveConfig({
    authorizationServer: {
      tokenEndpoint: 'http://127.0.0.1:1/token',
      clientId: 'agent-service',
      clientSecretFile: secret,
    },
    routes,
  });
  return new RouteTable(config.routes).routes;
}

/**
 * Stands in for the AS: answers through the real response parser (`interpret`), counts exchanges
 * per (subject, parameters) and optionally waits `delayMs` of real time per exchange.
 */
export function countingClient(options: {
  expiresIn: number;
  delayMs?: number;
  token?: (n: number) => string;
  /** Count per key (keeps one short string per key: off for memory measurements). */
  perKey?: boolean;
  /** Store the exact string `token()` returned instead of the parsed copy. */
  shareToken?: boolean;
}): TokenExchangeClient & {
  readonly count: number;
  readonly perKey: Map<string, number>;
} {
  const perKey = new Map<string, number>();
  let count = 0;
  return {
    get count() {
      return count;
    },
    perKey,
    async exchange(req: ExchangeRequest) {
      count++;
      if (options.perKey !== false) {
        const key = `${req.subjectToken}|${req.scopes.join(' ')}|${req.audience ?? ''}`;
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
      }
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      else await Promise.resolve();
      const accessToken = options.token ? options.token(count) : `delegated-${count}`;
      const body = {
        access_token: accessToken,
        issued_token_type: req.requestedTokenType,
        token_type: 'Bearer',
        expires_in: options.expiresIn,
        scope: req.scopes.join(' '),
      };
      const issued = interpret(200, JSON.stringify(body), req);
      // JSON.parse copies the token; keep the caller's string when it is meant to be shared.
      return options.shareToken ? { ...issued, accessToken } : issued;
    },
  };
}

export function tokenService(
  client: TokenExchangeClient,
  clock: Clock,
  cache: { refreshAheadSeconds: number; maxTtlSeconds: number; maxEntries: number; clockSkewSeconds: number },
): TokenService {
  const tokenMetrics = createMetrics({ registry: new Registry(), version: 'bench', defaultMetrics: false });
  return new TokenService({
    client,
    cache,
    subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    clock,
    metrics: tokenMetrics,
    routeMetrics: createRouteMetrics(tokenMetrics),
  });
}

export const silentLogger = pino({ level: 'silent' });
