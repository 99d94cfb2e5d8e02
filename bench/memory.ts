/**
 * Memory per cached token: heap growth for 100,000 entries in the real TokenService /
 * TokenCache (real keys, tokens parsed by the real `interpret`). Needs --expose-gc:
 *
 *   node --expose-gc --import tsx bench/memory.ts
 *
 * Three measurements, so the token's own bytes can be told apart from the cache's overhead:
 *   tokens-only  100,000 distinct ~800-byte strings in an array: what the tokens themselves cost;
 *   cache        100,000 entries, each with its own ~800-byte token: the total per entry;
 *   cache-shared 100,000 entries all holding one shared token string: the overhead per entry
 *                without the token (key, entry object, scopes, lru-cache slots).
 *   jwt-users    as cache-shared, but each user token is a JWT (sub, iss, email, exp, iat): adds
 *                what is kept per user for JWTs (the describe() memo of the claims) and the
 *                revocation index by sub and email (docs/revocation.md).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Route } from '../src/routing/route-table.js';
import { countingClient, manualClock, routesOf, silentLogger, tokenService } from './lib/in-process.js';

const ENTRIES = Number(process.env.BENCH_MEMORY_ENTRIES ?? 100_000);
const TOKEN_BYTES = 800;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

async function settle(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await sleep(10);
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** A flat string of `TOKEN_BYTES` random base64url characters (JWT-sized; one byte per character). */
function tokenLike(): string {
  return randomBytes((TOKEN_BYTES * 3) / 4).toString('base64url');
}

const route = routesOf([
  {
    name: 'documents',
    match: { pathPrefix: '/documents' },
    upstream: 'https://docs.internal',
    scopes: ['documents:read', 'documents:write'],
    audience: 'https://docs.internal',
  },
])[0] as Route;

/** A JWT-shaped user token (unsigned: only decoded, never verified, by the token service). */
function userJwt(n: number, now: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = {
    iss: 'https://idp.example',
    sub: `user-${n}`,
    email: `user-${n}@example.com`,
    iat: Math.floor(now / 1000),
    exp: Math.floor(now / 1000) + 7200,
  };
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${'s'.repeat(342)}`;
}

async function fillCache(
  tokenOf: (n: number) => string,
  shareToken: boolean,
  jwtUsers = false,
): Promise<{ bytes: number; keep: unknown }> {
  const before = await settle();
  const clock = manualClock(Date.now());
  const client = countingClient({ expiresIn: 3600, token: tokenOf, perKey: false, shareToken });
  const service = tokenService(client, clock, {
    refreshAheadSeconds: 30,
    maxTtlSeconds: 3600,
    maxEntries: ENTRIES,
    clockSkewSeconds: 5,
  });
  for (let i = 0; i < ENTRIES; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(ENTRIES, i + 1000); j++) {
      // The subject token is never stored (only its hash, in the key and in the describe() memo of
      // sub/exp, which is measured here too); the token string is garbage afterwards.
      const subject = service.describe(jwtUsers ? userJwt(j, clock.now()) : `subject-${j}-${'x'.repeat(700)}`);
      jobs.push(service.obtain({ route, subject, scopes: route.scopes, log: silentLogger, cacheable: true }));
    }
    await Promise.all(jobs);
  }
  if (service.cache.size !== ENTRIES) throw new Error(`expected ${ENTRIES} entries, found ${service.cache.size}`);
  if (jwtUsers && service.subjectIndex.size !== ENTRIES)
    throw new Error(`expected ${ENTRIES} indexed keys, found ${service.subjectIndex.size}`);
  const after = await settle();
  return { bytes: after - before, keep: service };
}

function line(kind: string, fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ kind, ...fields })}\n`);
}

// 1. The token strings alone.
{
  const before = await settle();
  const tokens = Array.from({ length: ENTRIES }, () => tokenLike());
  const after = await settle();
  line('memory-tokens-only', {
    entries: ENTRIES,
    tokenBytes: TOKEN_BYTES,
    bytesPerToken: Math.round((after - before) / ENTRIES),
    total: after - before,
  });
  tokens.length = 0;
}

// 2. The cache with a distinct token per entry: the honest total.
let total: number;
{
  const { bytes, keep } = await fillCache(() => tokenLike(), false);
  total = bytes;
  line('memory', {
    entries: ENTRIES,
    tokenBytes: TOKEN_BYTES,
    bytesPerEntry: Math.round(bytes / ENTRIES),
    mbPer100k: Math.round(((bytes / ENTRIES) * 100_000) / 1e4) / 100,
    note: 'heap + ArrayBuffer growth, token string included',
  });
  void keep;
}

// 3. The cache with one shared token: the overhead per entry without the token string.
{
  const shared = tokenLike();
  const { bytes, keep } = await fillCache(() => shared, true);
  line('memory', {
    entries: ENTRIES,
    tokenBytes: 0,
    bytesPerEntry: Math.round(bytes / ENTRIES),
    mbPer100k: Math.round(((bytes / ENTRIES) * 100_000) / 1e4) / 100,
    note: 'overhead only: key, entry, scopes, lru-cache slots (one token string shared by all entries)',
  });
  line('memory-split', {
    totalPerEntry: Math.round(total / ENTRIES),
    overheadPerEntry: Math.round(bytes / ENTRIES),
    tokenPerEntry: Math.round((total - bytes) / ENTRIES),
  });
  void keep;
}

// 4. As 3, with JWT user tokens: the per-user claims memo and the revocation index come on top.
{
  const shared = tokenLike();
  const { bytes, keep } = await fillCache(() => shared, true, true);
  line('memory-jwt-users', {
    entries: ENTRIES,
    tokenBytes: 0,
    bytesPerEntry: Math.round(bytes / ENTRIES),
    note: 'overhead only, one entry per JWT user: also the claims memo and the revocation index (sub, email)',
  });
  void keep;
}
