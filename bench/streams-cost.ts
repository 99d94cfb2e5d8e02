/**
 * Cost of tracking long-lived responses (docs/revocation.md "Open streams"):
 *   - the one check every forwarded response pays (is it a long-lived stream?), for a JSON answer;
 *   - heap per open stream in the registry (10,000 streams of distinct users, lifetime timers armed);
 *   - closing one user's streams on a revocation with 10,000 open.
 *
 *   node --expose-gc --import tsx bench/streams-cost.ts
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import type { SubjectInfo } from '../src/auth/token-service.js';
import { createMetrics } from '../src/observability/metrics.js';
import { isLongLived } from '../src/proxy/long-lived.js';
import { OpenStreams, type StreamCloser, streamTimer } from '../src/proxy/open-streams.js';
import type { Prepared } from '../src/proxy/prepare.js';
import { median, round } from './lib/stats.js';

const STREAMS = 10_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

async function heap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await sleep(10);
  }
  return process.memoryUsage().heapUsed;
}

function out(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

// 1. The per-response check, on ordinary answers of a route without mcp.
const ctx = { route: { mcp: undefined }, req: { method: 'GET' } } as unknown as Prepared;
let sink = false;
for (const type of ['application/json; charset=utf-8', 'text/html; charset=utf-8', 'text/event-stream']) {
  const head = { status: 200, headers: { 'content-type': type } };
  const runs: number[] = [];
  for (let r = 0; r < 6; r++) {
    const n = 5_000_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) sink = isLongLived(ctx, head) !== sink;
    if (r > 0) runs.push(Number(process.hrtime.bigint() - t) / n);
  }
  out({ kind: 'streams', name: `isLongLived (${type})`, nsPerCall: round(median(runs), 1) });
}

// 2. Heap per tracked stream.
const metrics = createMetrics({ registry: new Registry(), version: 'bench', defaultMetrics: false });
const streams = new OpenStreams({ metrics, timer: streamTimer, maxStreams: STREAMS });
const closer: StreamCloser = { closeStream: () => {} };
const now = Math.floor(Date.now() / 1000);
const subjects: SubjectInfo[] = Array.from({ length: STREAMS }, (_, i) => ({
  token: '',
  hash: '',
  sub: `user-${i}`,
  iss: 'https://idp',
  email: `user-${i}@example.com`,
  iat: now,
  expiresAt: undefined,
}));
const before = await heap();
const open = subjects.map((subject) =>
  streams.open({ kind: 'sse', route: 'r', subject, lifetimeMs: 600_000, lifetimeReason: 'expired', closer }),
);
const after = await heap();
out({ kind: 'streams', name: 'heap per open stream', bytes: Math.round((after - before) / STREAMS), streams: STREAMS });

// 3. One revocation among 10,000 open streams.
const t = process.hrtime.bigint();
const closed = streams.closeSubject({ kind: 'sub', sub: 'user-5000', iss: 'https://idp' }, () => true);
out({
  kind: 'streams',
  name: 'closeSubject with 10,000 open',
  closed,
  us: round(Number(process.hrtime.bigint() - t) / 1000, 1),
});

for (const s of open) s?.ended();
open.length = 0;
out({
  kind: 'streams',
  name: 'registry after every stream ended',
  size: streams.size,
  heapDelta: (await heap()) - before,
});
