import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { SubjectInfo } from '../../src/auth/token-service.js';
import { createMetrics, type StreamCloseReason } from '../../src/observability/metrics.js';
import { OpenStreams } from '../../src/proxy/open-streams.js';
import { manualTime } from '../helpers/manual-time.js';

function subject(claims: Partial<SubjectInfo>): SubjectInfo {
  return { token: 'not-kept', hash: 'h', sub: undefined, expiresAt: undefined, ...claims };
}

function setup(maxStreams = 10) {
  const time = manualTime();
  const metrics = createMetrics({ registry: new Registry(), version: 'test', defaultMetrics: false });
  const streams = new OpenStreams({ metrics, timer: time, maxStreams });
  const closed: Array<[string, StreamCloseReason]> = [];
  const open = (name: string, claims: Partial<SubjectInfo>, lifetimeMs?: number) =>
    streams.open({
      kind: 'sse',
      route: 'r',
      subject: subject(claims),
      lifetimeMs,
      lifetimeReason: 'expired',
      closer: { closeStream: (reason) => closed.push([name, reason]) },
    });
  const count = async (reason: string) => {
    const text = await metrics.registry.getSingleMetricAsString('delegate_proxy_streams_closed_total');
    return Number(
      text
        .split('\n')
        .find((l) => l.includes(`reason="${reason}"`))
        ?.split(' ')[1] ?? 0,
    );
  };
  return { time, streams, closed, open, count };
}

const all = () => true;

describe('OpenStreams', () => {
  it('closes the streams of a sub (any issuer rule the caller gives), not other users', () => {
    const { streams, closed, open } = setup();
    open('a1', { sub: 'alice', iss: 'https://idp' });
    open('a2', { sub: 'alice', iss: 'https://other' });
    open('b', { sub: 'bob' });
    expect(streams.closeSubject({ kind: 'sub', sub: 'alice' }, (c) => c.iss === 'https://idp')).toBe(1);
    expect(closed).toEqual([['a1', 'revoked']]);
    expect(streams.size).toBe(2);
    expect(streams.closeSubject({ kind: 'sub', sub: 'alice' }, all)).toBe(1);
    expect(streams.closeSubject({ kind: 'sub', sub: 'nobody' }, all)).toBe(0);
    expect(streams.size).toBe(1);
  });

  it('finds streams by email, case-insensitively', () => {
    const { streams, closed, open } = setup();
    open('e', { sub: 'x1', email: 'Alice@Example.com' });
    open('o', { sub: 'x2', email: 'bob@example.com' });
    expect(streams.closeSubject({ kind: 'email', email: 'alice@example.COM' }, all)).toBe(1);
    expect(closed).toEqual([['e', 'revoked']]);
  });

  it('passes the claims (never the token) to the matcher', () => {
    const { streams, open } = setup();
    open('a', { sub: 'alice', iat: 100 });
    const seen: unknown[] = [];
    streams.closeSubject({ kind: 'sub', sub: 'alice' }, (c) => {
      seen.push(c);
      return false;
    });
    expect(JSON.stringify(seen)).not.toContain('not-kept');
    expect(seen).toMatchObject([{ sub: 'alice', iss: undefined, email: undefined, iat: 100 }]);
  });

  it('closes at the lifetime limit; a stream that ends first clears its timer', async () => {
    const { time, streams, closed, open, count } = setup();
    open('short', { sub: 'a' }, 1_000);
    const other = open('ends', { sub: 'b' }, 2_000);
    expect(time.pending).toEqual([1_000, 2_000]);
    other?.ended();
    expect(time.pending).toEqual([1_000]);
    time.advance(1_000);
    expect(closed).toEqual([['short', 'expired']]);
    expect(streams.size).toBe(0);
    expect(time.pending).toEqual([]);
    expect(await count('expired')).toBe(1);
  });

  it('empties as streams end, and counts a close once', () => {
    const { streams, open, closed } = setup();
    const opened = Array.from({ length: 5 }, (_, i) => open(`s${i}`, { sub: `u${i % 2}`, email: `u${i}@x` }));
    expect(streams.size).toBe(5);
    opened[0]?.close('revoked');
    opened[0]?.close('revoked');
    opened[0]?.ended();
    for (const s of opened) s?.ended();
    expect(streams.size).toBe(0);
    expect(closed).toEqual([['s0', 'revoked']]);
    expect(streams.closeSubject({ kind: 'sub', sub: 'u1' }, all)).toBe(0);
    expect(streams.closeSubject({ kind: 'email', email: 'u1@x' }, all)).toBe(0);
  });

  it('is bounded: beyond maxStreams a stream is closed at once, never left untracked', async () => {
    const { streams, open, closed, count } = setup(2);
    open('a', { sub: 'a' });
    open('b', { sub: 'b' });
    expect(open('c', { sub: 'c' })).toBeUndefined();
    expect(closed).toEqual([['c', 'capacity']]);
    expect(streams.size).toBe(2);
    expect(await count('capacity')).toBe(1);
  });
});
