import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { RevocationList } from '../../src/revocation/revocation-list.js';
import { manualClock } from '../helpers/start-proxy.js';

const T = 1_800_000_000_000; // epoch ms, a whole second

function list(options: { retainMs?: number; maxEntries?: number } = {}) {
  const clock = manualClock(T);
  return {
    clock,
    list: new RevocationList({ clock, retainMs: options.retainMs ?? 3_600_000, maxEntries: options.maxEntries ?? 100 }),
  };
}

describe('RevocationList', () => {
  it('refuses tokens issued at or before the event, and passes tokens issued after it', () => {
    const { list: l } = list();
    l.add({ kind: 'sub', sub: 'alice' }, T + 500, 'admin', 'admin');
    expect(l.check({ sub: 'alice', iat: T / 1000 - 10 })).toBeDefined();
    expect(l.check({ sub: 'alice', iat: T / 1000 })).toBeDefined(); // same second as the event
    expect(l.check({ sub: 'alice', iat: T / 1000 + 1 })).toBeUndefined();
    expect(l.check({ sub: 'bob', iat: T / 1000 - 10 })).toBeUndefined();
    expect(l.check({ iat: T / 1000 - 10 })).toBeUndefined(); // opaque token: nothing to match
  });

  it('refuses a token without iat while the revocation is active (it cannot show it is newer)', () => {
    const { list: l } = list();
    l.add({ kind: 'sub', sub: 'alice' }, T, 'admin', 'admin');
    expect(l.check({ sub: 'alice' })).toBeDefined();
  });

  it('matches iss when the revocation names one (a token without iss cannot be told apart: refused)', () => {
    const { list: l } = list();
    l.add({ kind: 'sub', sub: 'alice', iss: 'https://idp-a' }, T, 'ssf', 'session_revoked');
    expect(l.check({ sub: 'alice', iss: 'https://idp-a', iat: 1 })).toBeDefined();
    expect(l.check({ sub: 'alice', iss: 'https://idp-b', iat: 1 })).toBeUndefined();
    expect(l.check({ sub: 'alice', iat: 1 })).toBeDefined();
  });

  it('matches email subjects case-insensitively', () => {
    const { list: l } = list();
    l.add({ kind: 'email', email: 'Alice@Example.com' }, T, 'ssf', 'credential_change');
    expect(l.check({ sub: 'u1', email: 'alice@example.COM', iat: 1 })).toBeDefined();
    expect(l.check({ sub: 'u1', email: 'bob@example.com', iat: 1 })).toBeUndefined();
  });

  it('keeps a revocation retainSeconds, then drops it', () => {
    const { clock, list: l } = list({ retainMs: 60_000 });
    l.add({ kind: 'sub', sub: 'alice' }, T, 'admin', 'admin');
    clock.advance(59_999);
    expect(l.check({ sub: 'alice', iat: 1 })).toBeDefined();
    expect(l.list()).toHaveLength(1);
    clock.advance(1);
    expect(l.check({ sub: 'alice', iat: 1 })).toBeUndefined();
    expect(l.list()).toHaveLength(0);
    expect(l.sweep()).toBe(1);
    expect(l.size).toBe(0);
  });

  it('a second revocation of the same user moves the time forward without a second entry', () => {
    const { list: l } = list();
    l.add({ kind: 'sub', sub: 'alice' }, T, 'admin', 'admin');
    l.add({ kind: 'sub', sub: 'alice' }, T + 10_000, 'ssf', 'session_revoked');
    l.add({ kind: 'sub', sub: 'alice' }, T - 10_000, 'ssf', 'session_revoked'); // older event: keeps the later time
    expect(l.size).toBe(1);
    expect(l.list()[0]?.revokedAt).toBe(T + 10_000);
    expect(l.check({ sub: 'alice', iat: T / 1000 + 5 })).toBeDefined();
  });

  it('is bounded: expired entries make room; a full list of active ones refuses (503), never drops one', () => {
    const { clock, list: l } = list({ maxEntries: 2, retainMs: 60_000 });
    l.add({ kind: 'sub', sub: 'a' }, T, 'admin', 'admin');
    clock.advance(30_000);
    l.add({ kind: 'sub', sub: 'b' }, T + 30_000, 'admin', 'admin');
    let error: unknown;
    try {
      l.add({ kind: 'sub', sub: 'c' }, T + 30_000, 'admin', 'admin');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProxyError);
    expect((error as ProxyError).status).toBe(503);
    expect(l.check({ sub: 'a', iat: 1 })).toBeDefined();
    clock.advance(30_000); // a expires
    l.add({ kind: 'sub', sub: 'c' }, T + 60_000, 'admin', 'admin');
    expect(l.size).toBe(2);
    expect(l.check({ sub: 'c', iat: 1 })).toBeDefined();
  });

  it('remove lifts exactly one subject, only up to the given time, and frees its slot', () => {
    const { list: l } = list({ maxEntries: 2 });
    l.add({ kind: 'sub', sub: 'alice', iss: 'https://a' }, T, 'admin', 'admin');
    l.add({ kind: 'email', email: 'Bob@Example.com' }, T, 'ssf', 'session_revoked');
    // Another issuer's alice, or a lift older than the revocation, lifts nothing.
    expect(l.remove({ kind: 'sub', sub: 'alice', iss: 'https://b' }, T + 1)).toBe(false);
    expect(l.remove({ kind: 'sub', sub: 'alice', iss: 'https://a' }, T - 1)).toBe(false);
    expect(l.check({ sub: 'alice', iss: 'https://a', iat: T / 1000 - 1 })).toBeDefined();
    expect(l.remove({ kind: 'sub', sub: 'alice', iss: 'https://a' }, T)).toBe(true);
    expect(l.check({ sub: 'alice', iss: 'https://a', iat: T / 1000 - 1 })).toBeUndefined();
    expect(l.remove({ kind: 'email', email: 'bob@example.com' }, T)).toBe(true);
    expect(l.size).toBe(0);
    expect(l.find({ kind: 'email', email: 'bob@example.com' })).toBeUndefined();
    // Both slots are free again.
    l.add({ kind: 'sub', sub: 'c' }, T, 'admin', 'admin');
    l.add({ kind: 'sub', sub: 'd' }, T, 'admin', 'admin');
    expect(l.size).toBe(2);
  });
});
