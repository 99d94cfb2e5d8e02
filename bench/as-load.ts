/**
 * Authorization-server load: how many exchanges reach the AS. In-process, with the real
 * TokenService/TokenCache, an injected clock and a counting stand-in for the AS (answers parsed by
 * the real `interpret`). Prints one JSON line per scenario.
 *
 *   node --import tsx bench/as-load.ts
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeSubject, type SubjectInfo, type TokenService } from '../src/auth/token-service.js';
import type { Route } from '../src/routing/route-table.js';
import { countingClient, manualClock, routesOf, silentLogger, tokenService } from './lib/in-process.js';

const USERS = Number(process.env.BENCH_SIM_USERS ?? 1000);
const SIMULATED_S = 600;
const TTL_S = 300;
const REFRESH_AHEAD_S = 30;
const SKEW_S = 5;
const CACHE = {
  refreshAheadSeconds: REFRESH_AHEAD_S,
  maxTtlSeconds: TTL_S,
  maxEntries: 100_000,
  clockSkewSeconds: SKEW_S,
};

// Three routes, two distinct parameter sets: `docs` and `docs-mirror` share cache entries (docs/design.md "Cache").
const routes = routesOf([
  { name: 'docs', match: { pathPrefix: '/docs' }, upstream: 'http://127.0.0.1:1', scopes: ['docs:read'] },
  { name: 'docs-mirror', match: { pathPrefix: '/mirror' }, upstream: 'http://127.0.0.1:2', scopes: ['docs:read'] },
  {
    name: 'tools',
    match: { pathPrefix: '/tools' },
    upstream: 'http://127.0.0.1:3',
    scopes: ['tools:read', 'tools:write'],
  },
]);
const PARAM_SETS = 2;

function subject(sub: string): SubjectInfo {
  // An opaque token: the subject's own expiry does not cap the lifetime here.
  return describeSubject(`user-token-${sub}`);
}

function request(service: TokenService, route: Route, s: SubjectInfo) {
  return service.obtain({ route, subject: s, scopes: route.scopes, log: silentLogger, cacheable: true });
}

/**
 * The rule as specified, independent of the code: an exchange when a key has no token, or when a
 * request finds less than refreshAhead left (t > refreshAt); a new token's refresh point is
 * issue time + TTL - refreshAhead.
 */
function expectedExchanges(requestTimesS: number[]): number {
  let count = 0;
  let refreshAt = -Infinity;
  let first = true;
  for (const t of requestTimesS) {
    if (first || t > refreshAt) {
      count++;
      refreshAt = t + TTL_S - REFRESH_AHEAD_S;
      first = false;
    }
  }
  return count;
}

async function simulate(name: string, periodS: number): Promise<void> {
  const start = Date.UTC(2030, 0, 1);
  const clock = manualClock(start);
  const client = countingClient({ expiresIn: TTL_S });
  const service = tokenService(client, clock, CACHE);
  const subjects = Array.from({ length: USERS }, (_, i) => subject(`u${i}`));
  const times = new Map<string, number[]>();
  let requests = 0;
  let servedUnusable = 0;
  const results: Record<string, number> = {};
  for (let t = 0; t <= SIMULATED_S; t++) {
    clock.set(start + t * 1000);
    const jobs: Promise<void>[] = [];
    for (let u = 0; u < USERS; u++) {
      if ((t + u) % periodS !== 0) continue; // each user on its own phase
      const s = subjects[u] as SubjectInfo;
      for (const route of routes) {
        const k = `user-token-u${u}|${route.scopes.join(' ')}|`;
        const list = times.get(k) ?? [];
        if (list.at(-1) !== t) list.push(t);
        times.set(k, list);
        requests++;
        jobs.push(
          request(service, route, s).then((got) => {
            results[got.result] = (results[got.result] ?? 0) + 1;
            if (got.token.expiresAt - SKEW_S * 1000 <= clock.now()) servedUnusable++;
          }),
        );
      }
    }
    await Promise.all(jobs);
    // Let background refreshes finish, and let lru-cache's 1 ms cached "now" lapse before the clock moves.
    await sleep(2);
  }
  let expected = 0;
  let mismatches = 0;
  let min = Infinity;
  let max = 0;
  for (const [k, list] of times) {
    const want = expectedExchanges(list);
    const got = client.perKey.get(k) ?? 0;
    expected += want;
    if (got !== want) mismatches++;
    min = Math.min(min, got);
    max = Math.max(max, got);
  }
  process.stdout.write(
    `${JSON.stringify({
      kind: 'as-load',
      scenario: name,
      users: USERS,
      routes: routes.length,
      distinctParamSets: PARAM_SETS,
      keys: times.size,
      simulatedS: SIMULATED_S,
      requestEveryS: periodS,
      ttlS: TTL_S,
      refreshAheadS: REFRESH_AHEAD_S,
      requests,
      lookups: results,
      exchanges: client.count,
      expected,
      perKeyMismatches: mismatches,
      perKeyMin: min,
      perKeyMax: max,
      exchangesPerKeyPer10Min: Math.round((client.count / times.size) * 100) / 100,
      servedPastExpiry: servedUnusable,
    })}\n`,
  );
}

/** 1,000 concurrent requests for one key in three states: cold, in the refresh-ahead window, expired. */
async function herd(): Promise<void> {
  const start = Date.UTC(2030, 0, 1);
  const clock = manualClock(start);
  const client = countingClient({ expiresIn: TTL_S, delayMs: 20 });
  const service = tokenService(client, clock, CACHE);
  const route = routes[0] as Route;
  const s = subject('herd');
  const burst = async (phase: string): Promise<void> => {
    const before = client.count;
    const got = await Promise.all(Array.from({ length: 1000 }, () => request(service, route, s)));
    await sleep(50); // a background refresh, if one started, completes
    const results: Record<string, number> = {};
    for (const g of got) results[g.result] = (results[g.result] ?? 0) + 1;
    process.stdout.write(
      `${JSON.stringify({ kind: phase === 'cold' ? 'as-load-herd' : 'as-load-herd-phase', phase, requests: 1000, exchanges: client.count - before, lookups: results })}\n`,
    );
  };
  await burst('cold');
  clock.set(start + (TTL_S - REFRESH_AHEAD_S + 1) * 1000);
  await sleep(2);
  await burst('refresh-ahead');
  clock.set(start + (2 * TTL_S + 10) * 1000);
  await sleep(2);
  await burst('expired');
}

await simulate('busy: every user, every route, every 5 s', 5);
await simulate('sparse: every user, every route, every 7 min', 420);
await herd();
