import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { waitFor } from '../helpers/raw-http.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { countingUpstream } from './forwarder-upstreams.js';

const closers = useClosers();

let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

const ABANDONED = 50;

/**
 * A client that gives up before the response headers cancels its upstream request at
 * once, instead of holding an upstream connection for the route's whole timeoutMs.
 */
describe('a client leaving before response headers cancels its upstream request', () => {
  it(`${ABANDONED} abandoned requests to a slow upstream leave no upstream connection open, and the next request is served promptly`, async () => {
    const upstream = await countingUpstream((req, res) => {
      if (req.url?.startsWith('/slow')) return; // answers only when the route timeout (30 s) is long past
      res.end('fast');
    });
    closers.push(() => upstream.close());
    const proxy = await startProxy({
      as,
      config: {
        routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }],
      },
    });
    closers.push(() => proxy.close());
    const headers = { authorization: `Bearer ${await as.userToken('alice', ['documents:read'])}` };
    await (await request(`${proxy.url}/warm`, { headers })).body.text();

    const controllers = Array.from({ length: ABANDONED }, () => new AbortController());
    const calls = controllers.map((c, i) =>
      request(`${proxy.url}/slow/${i}`, { headers, signal: c.signal }).catch(() => 'aborted'),
    );
    await waitFor(
      () => upstream.arrivals.filter((a) => a.startsWith('GET /slow')).length === ABANDONED,
      10_000,
      'every request upstream',
    );
    expect(upstream.open()).toBeGreaterThanOrEqual(ABANDONED);
    for (const c of controllers) c.abort();
    expect(await Promise.all(calls)).toEqual(Array(ABANDONED).fill('aborted'));

    // The upstream sees its connections closed shortly after the clients left (not after 30 s).
    await waitFor(() => upstream.open() <= 1, 3_000, 'upstream connections closed');
    const started = performance.now();
    const res = await request(`${proxy.url}/after`, { headers });
    expect(await res.body.text()).toBe('fast');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('requests abandoned while queued for a connection never reach the upstream', async () => {
    let release: (() => void) | undefined;
    const upstream = await countingUpstream((req, res) => {
      if (req.url === '/hold') {
        release = () => res.end('held');
        return;
      }
      res.end('fast');
    });
    closers.push(() => upstream.close());
    const proxy = await startProxy({
      as,
      config: {
        upstreams: { connections: 1 },
        routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }],
      },
    });
    closers.push(() => proxy.close());
    const headers = { authorization: `Bearer ${await as.userToken('alice', ['documents:read'])}` };
    await (await request(`${proxy.url}/warm`, { headers })).body.text();

    const held = request(`${proxy.url}/hold`, { headers });
    await waitFor(() => release !== undefined, 5_000, 'the only connection busy');
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const queued = controllers.map((c, i) =>
      request(`${proxy.url}/queued/${i}`, { headers, signal: c.signal }).catch(() => 'aborted'),
    );
    // Every queued request has reached the proxy's forward step (its upstream request is queued).
    await waitFor(() => proxy.proxy.inFlight.count >= 21, 5_000, 'requests queued at the proxy');
    for (const c of controllers) c.abort();
    expect(await Promise.all(queued)).toEqual(Array(20).fill('aborted'));
    await waitFor(() => proxy.proxy.inFlight.count === 1, 5_000, 'abandoned requests gone');
    release?.();
    expect(await (await held).body.text()).toBe('held');
    const after = await request(`${proxy.url}/after`, { headers });
    expect(await after.body.text()).toBe('fast');
    expect(upstream.arrivals).toEqual(['GET /warm', 'GET /hold', 'GET /after']);
  });
});
