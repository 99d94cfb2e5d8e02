/**
 * Per-request costs of the pieces of the delegate-proxy hot path, in isolation (nanoseconds per
 * call, median of 5 runs). Complements the CPU profile: says what each piece costs on this machine.
 *
 *   node --import tsx bench/micro.ts
 */
import { hash, randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { peekJwtClaims } from '../src/auth/jwt-claims.js';
import { describeSubject } from '../src/auth/token-service.js';
import { createLogger } from '../src/observability/logger.js';
import { createMetrics } from '../src/observability/metrics.js';
import { countingClient, manualClock, routesOf, silentLogger, tokenService } from './lib/in-process.js';
import { median, round } from './lib/stats.js';

function bench(name: string, n: number, fn: (i: number) => unknown): void {
  const runs: number[] = [];
  let sink: unknown;
  for (let r = 0; r < 6; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = fn(i);
    const ns = Number(process.hrtime.bigint() - t) / n;
    if (r > 0) runs.push(ns); // first run is warm-up
  }
  void sink;
  process.stdout.write(`${JSON.stringify({ kind: 'micro', name, nsPerCall: round(median(runs), 0) })}\n`);
}

async function benchAsync(name: string, n: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  const runs: number[] = [];
  for (let r = 0; r < 6; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn(i);
    const ns = Number(process.hrtime.bigint() - t) / n;
    if (r > 0) runs.push(ns);
  }
  process.stdout.write(`${JSON.stringify({ kind: 'micro', name, nsPerCall: round(median(runs), 0) })}\n`);
}

// A JWT shaped like the dev AS's subject tokens (~700 bytes).
const payload = Buffer.from(
  JSON.stringify({
    scope: 'bench:read',
    sub: 'bench-user-0',
    aud: 'agent-service',
    iss: 'http://127.0.0.1:40000',
    iat: 1_900_000_000,
    exp: 1_900_007_200,
    jti: randomUUID(),
  }),
).toString('base64url');
const jwt = `eyJhbGciOiJSUzI1NiIsImtpZCI6Ik1LNGdYUlZ6c0ZwRmlUeGVJcjhMeGQ4Nk1kbWlqX3ZXbUJpMnZOT0RxYVEiLCJ0eXAiOiJhdCtqd3QifQ.${payload}.${'s'.repeat(342)}`;

bench('crypto.hash sha256 of the subject token', 200_000, () => hash('sha256', jwt, 'base64url'));
bench('peekJwtClaims (jose decodeJwt)', 200_000, () => peekJwtClaims(jwt));
bench('describeSubject (hash + decode)', 200_000, () => describeSubject(jwt));
bench('randomUUID', 200_000, () => randomUUID());

const devNull = pino.destination({ dest: '/dev/null', sync: true });
const logger = createLogger({ level: 'info', destination: devNull });
bench('logger.child({ reqId })', 200_000, (i) => logger.child({ reqId: String(i) }));
const child = logger.child({ reqId: 'r' }).child({ route: 'bench' });
bench('access log line (info, redaction, /dev/null)', 100_000, (i) =>
  child.info(
    {
      access: true,
      method: 'GET',
      path: '/',
      status: 200,
      upstreamStatus: 200,
      durationMs: i / 1000,
      cache: 'hit',
      sub: 'bench-user-0',
    },
    'request',
  ),
);

const metrics = createMetrics({ registry: new Registry(), version: 'bench', defaultMetrics: false });
bench('counter.inc({ route, result })', 500_000, () =>
  metrics.tokenCacheLookups.inc({ route: 'bench', result: 'hit' }),
);
bench('histogram.observe({ route })', 500_000, (i) => metrics.requestDuration.observe({ route: 'bench' }, i / 1e6));

const route = routesOf([
  { name: 'bench', match: { pathPrefix: '/' }, upstream: 'http://127.0.0.1:1', scopes: ['bench:read'] },
])[0];
if (!route) throw new Error('no route');
const service = tokenService(countingClient({ expiresIn: 3600 }), manualClock(Date.now()), {
  refreshAheadSeconds: 30,
  maxTtlSeconds: 3600,
  maxEntries: 10_000,
  clockSkewSeconds: 5,
});
const subject = describeSubject(jwt);
await benchAsync('TokenService.obtain, cache hit', 100_000, () =>
  service.obtain({ route, subject, scopes: route.scopes, log: silentLogger, cacheable: true }),
);
