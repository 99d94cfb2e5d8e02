import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { manualClock, startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

async function setup(clock: ReturnType<typeof manualClock>, cache: Record<string, number> = {}) {
  const as: TestAuthorizationServer = await startAs();
  closers.push(() => as.close());
  const upstream: TestUpstream = await startUpstream();
  closers.push(() => upstream.close());
  const proxy: TestProxy = await startProxy({
    as,
    clock,
    config: {
      cache,
      routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstream.url, scopes: ['documents:read'] }],
    },
  });
  closers.push(() => proxy.close());
  return { as, upstream, proxy };
}

async function get(url: string, token: string): Promise<number> {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } });
  await res.body.dump();
  return res.statusCode;
}

const tokenOf = (u: TestUpstream, i: number) => u.requests[i]?.headers.authorization;

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('delegated token lifetime (real AS, injected proxy clock)', () => {
  it('in the refresh window the request is served at once with the old token and one background exchange replaces it', async () => {
    const clock = manualClock();
    const { as, upstream, proxy } = await setup(clock);
    const user = await as.userToken('alice', ['documents:read']);
    expect(await get(`${proxy.url}/docs/1`, user)).toBe(200);
    clock.advance(285_000); // 15 s left of 300: inside the 30 s window
    // The first request in the window gets the old token: it did not wait for the exchange.
    expect(await get(`${proxy.url}/docs/2`, user)).toBe(200);
    expect(tokenOf(upstream, 1)).toBe(tokenOf(upstream, 0));
    const burst = await Promise.all(Array.from({ length: 10 }, () => get(`${proxy.url}/docs/3`, user)));
    expect(burst.every((s) => s === 200)).toBe(true);
    await until(() => as.exchanges.length >= 2);
    expect(await get(`${proxy.url}/docs/4`, user)).toBe(200);
    expect(tokenOf(upstream, 12)).not.toBe(tokenOf(upstream, 0));
    // Eleven requests in the window, one background exchange.
    expect(as.exchanges).toHaveLength(2);
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('delegate_proxy_token_refreshes_total{route="docs",trigger="ahead"} 1');
  });

  it('a 36 s token with a 30 s refresh window is refreshed after 18 s (min(refreshAheadSeconds, lifetime / 2)), not after 6 s', async () => {
    const clock = manualClock();
    const { as, upstream, proxy } = await setup(clock, { maxTtlSeconds: 36, refreshAheadSeconds: 30 });
    const user = await as.userToken('alice', ['documents:read']);
    expect(await get(`${proxy.url}/docs/1`, user)).toBe(200);
    clock.advance(17_000); // past the 6 s a plain 30 s window would give, before the half-life
    expect(await get(`${proxy.url}/docs/2`, user)).toBe(200);
    // Give a wrongly started background exchange the chance to land before the next check.
    await new Promise((r) => setTimeout(r, 200));
    clock.advance(1_500); // 18.5 s: just past the refresh point
    expect(await get(`${proxy.url}/docs/3`, user)).toBe(200);
    // The request past the refresh point still got the first token (refreshed in the background).
    expect(tokenOf(upstream, 1)).toBe(tokenOf(upstream, 0));
    expect(tokenOf(upstream, 2)).toBe(tokenOf(upstream, 0));
    await until(() => as.exchanges.length >= 2);
    expect(as.exchanges).toHaveLength(2);
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('delegate_proxy_token_refreshes_total{route="docs",trigger="ahead"} 1');
  });

  it('a token past its expiry is never served: the next request waits for a new exchange', async () => {
    const clock = manualClock();
    const { as, upstream, proxy } = await setup(clock);
    const user = await as.userToken('alice', ['documents:read']);
    expect(await get(`${proxy.url}/docs/1`, user)).toBe(200);
    clock.advance(299_000);
    expect(await get(`${proxy.url}/docs/2`, user)).toBe(200);
    expect(as.exchanges).toHaveLength(2);
    expect(tokenOf(upstream, 1)).not.toBe(tokenOf(upstream, 0));
  });

  it('the delegated token never outlives the user token', async () => {
    const clock = manualClock();
    const { as, proxy } = await setup(clock);
    const user = await as.userToken('alice', ['documents:read'], 60);
    expect(await get(`${proxy.url}/docs/1`, user)).toBe(200);
    clock.advance(50_000);
    expect(await get(`${proxy.url}/docs/2`, user)).toBe(200);
    expect(as.exchanges).toHaveLength(1);
    // 56 s: inside the skew before the user token's exp; the cached token must not be used.
    clock.advance(6_000);
    const status = await get(`${proxy.url}/docs/3`, user);
    expect(status).toBe(401);
    // Refused before the AS is asked for a token that could live only seconds.
    expect(as.exchanges).toHaveLength(1);
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    // The one issued token lived at most as long as the user's 60 s.
    const ttl = /delegate_proxy_token_ttl_seconds_sum\{route="docs"\} ([\d.]+)/.exec(metrics);
    expect(Number(ttl?.[1])).toBeLessThanOrEqual(60);
  });

  it('lifetime is capped at cache.maxTtlSeconds and the cap is counted', async () => {
    const clock = manualClock();
    const { as, proxy } = await setup(clock, { maxTtlSeconds: 60, refreshAheadSeconds: 10 });
    const user = await as.userToken('alice', ['documents:read']);
    expect(await get(`${proxy.url}/docs/1`, user)).toBe(200);
    clock.advance(56_000);
    expect(await get(`${proxy.url}/docs/2`, user)).toBe(200);
    expect(as.exchanges).toHaveLength(2);
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('delegate_proxy_token_ttl_capped_total{route="docs"} 2');
  });
});
