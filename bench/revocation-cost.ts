// Cost of revocation on the request path and of applying one (node --import tsx bench/revocation-cost.ts).
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { TokenExchangeClient } from '../src/auth/token-exchange.js';
import { TokenService } from '../src/auth/token-service.js';
import { createMetrics } from '../src/observability/metrics.js';
import { createRouteMetrics } from '../src/observability/route-metrics.js';
import { systemClock } from '../src/pipeline/clock.js';
import { RevocationList } from '../src/revocation/revocation-list.js';
import { Revoker } from '../src/revocation/revoker.js';
import { RouteTable } from '../src/routing/route-table.js';

const USERS = 10_000;
const REVOKED = 100_000;

function jwt(claims: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc({ alg: 'none' })}.${enc(claims)}.sig`;
}

const client: TokenExchangeClient = {
  exchange: async () => ({
    accessToken: 'delegated',
    issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    tokenType: 'Bearer',
    expiresIn: 300,
    scopes: ['r'],
  }),
};
const metrics = createMetrics({ registry: new Registry(), version: 'bench', defaultMetrics: false });
const tokens = new TokenService({
  client,
  cache: { refreshAheadSeconds: 30, maxTtlSeconds: 300, maxEntries: USERS, clockSkewSeconds: 5 },
  subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  clock: systemClock,
  metrics,
  routeMetrics: createRouteMetrics(metrics),
});
const [route] = new RouteTable([
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
]).routes;
const log = pino({ level: 'silent' });
const now = Math.floor(Date.now() / 1000);
const subjects = Array.from({ length: USERS }, (_, i) =>
  tokens.describe(jwt({ sub: `user-${i}`, iss: 'https://idp', iat: now - 60, exp: now + 3600 })),
);
for (const subject of subjects)
  await tokens.obtain({ route: route!, subject, scopes: route!.scopes, log, cacheable: true });

const list = new RevocationList({ clock: systemClock, retainMs: 86_400_000, maxEntries: REVOKED + USERS });
const revoker = new Revoker({ tokens, list, metrics, logger: log, clock: systemClock });

function perCall(name: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(n, 10_000); i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  console.log(
    JSON.stringify({ kind: 'revocation-cost', name, nsPerCall: Math.round(Number(process.hrtime.bigint() - t0) / n) }),
  );
}

perCall('check, empty list', 1_000_000, (i) => revoker.check(subjects[i % USERS]!));
for (let i = 0; i < REVOKED; i++) list.add({ kind: 'sub', sub: `other-${i}` }, Date.now(), 'admin', 'admin');
perCall(`check, ${REVOKED} revocations, user not revoked`, 1_000_000, (i) => revoker.check(subjects[i % USERS]!));
let k = 0;
perCall(`revoke (list entry + evict 1 of ${USERS} cached entries)`, 5_000, () => {
  revoker.revoke({
    target: { kind: 'sub', sub: `user-${k++}`, iss: 'https://idp' },
    revokedAt: Date.now(),
    source: 'ssf',
    event: 'session_revoked',
    refuse: true,
  });
});
console.log(
  JSON.stringify({ kind: 'revocation-cost', cacheEntriesLeft: tokens.cache.size, indexLeft: tokens.subjectIndex.size }),
);
