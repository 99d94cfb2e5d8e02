import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { type ManualTime, manualTime } from '../helpers/manual-time.js';
import { waitFor } from '../helpers/raw-http.js';
import { openSse, type SseClient } from '../helpers/sse-client.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startSseUpstream, type TestSseUpstream } from '../helpers/start-sse-upstream.js';
import { startWsUpstream } from '../helpers/start-ws-upstream.js';
import { openProxyWs } from '../helpers/ws-client.js';

const closers = useClosers();
const READ = 'mcp:tools:read';
/** Lifetime of the delegated tokens the AS issues here. */
const TOKEN_TTL_S = 120;

interface Setup {
  readonly time: ManualTime;
  readonly upstream: TestSseUpstream;
  readonly proxy: TestProxy;
  readonly user: string;
}

async function setup(mcp: Record<string, unknown> = {}): Promise<Setup> {
  const as = await startAs({ accessTokenTtlSeconds: TOKEN_TTL_S });
  closers.push(() => as.close());
  const upstream = await startSseUpstream({
    // An ordinary MCP POST answers at once over JSON; the stream methods stay open over SSE.
    json: (req, body) =>
      req.method === 'POST' && !body.includes('subscriptions/listen') && !body.includes('"slow"')
        ? { jsonrpc: '2.0', id: 1, result: {} }
        : undefined,
  });
  closers.push(() => upstream.close());
  const { time, proxy } = await startOnManualTime(as, [
    {
      name: 'mcp',
      match: { pathPrefix: '/mcp' },
      upstream: upstream.url,
      scopes: [READ],
      audience: 'https://mcp.internal',
      mcp: { methodScopes: { 'subscriptions/listen': [READ] }, allowMethods: ['slow'], ...mcp },
    },
    { name: 'events', match: { pathPrefix: '/events' }, upstream: upstream.url, scopes: [READ] },
  ]);
  return { time, upstream, proxy, user: await as.userToken('alice', [READ]) };
}

/** The proxy with `routes`, its clock and stream timer both on one manual time, no clock skew allowed. */
async function startOnManualTime(
  as: TestAuthorizationServer,
  routes: Array<Record<string, unknown>>,
): Promise<{ time: ManualTime; proxy: TestProxy }> {
  const time = manualTime();
  const proxy = await startProxy({
    as,
    clock: time,
    deps: { streamTimer: time },
    config: { cache: { clockSkewSeconds: 0 }, routes },
  });
  closers.push(() => proxy.close());
  return { time, proxy };
}

function getStream(proxy: TestProxy, user: string, path = '/mcp'): Promise<SseClient> {
  return openSse(`${proxy.url}${path}`, {
    headers: { authorization: `Bearer ${user}`, accept: 'text/event-stream' },
  });
}

/** A 2026-07-28 `subscriptions/listen` request: the modern `_meta` and the mirrored headers. */
function listen(proxy: TestProxy, user: string, method = 'subscriptions/listen'): Promise<SseClient> {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 7,
    method,
    params: {
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
      },
      notifications: { toolsListChanged: true },
    },
  });
  return openSse(`${proxy.url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${user}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
    },
    body,
  });
}

/** The stream is live end to end: an event the upstream sends now reaches the client. */
async function stillOpen(upstream: TestSseUpstream, client: SseClient, index: number, text: string): Promise<void> {
  upstream.streams[index]?.send(text);
  await client.received(text);
}

function closedCount(proxy: TestProxy, labels: string): Promise<number> {
  return proxy.registry.getSingleMetricAsString('delegate_proxy_streams_closed_total').then((t) =>
    Number(
      t
        .split('\n')
        .find((l) => l.includes(labels))
        ?.split(' ')[1] ?? 0,
    ),
  );
}

describe('WebSocket lifetime on the same registry', () => {
  it('closes a WebSocket (1008) when the delegated token expires, on the injected timer', async () => {
    const as = await startAs({ accessTokenTtlSeconds: TOKEN_TTL_S });
    closers.push(() => as.close());
    const upstream = await startWsUpstream();
    closers.push(() => upstream.close());
    const { time, proxy } = await startOnManualTime(as, [
      { name: 'ws', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: [READ] },
    ]);
    const ws = await openProxyWs(closers, proxy.url, '/live', await as.userToken('alice', [READ]));
    expect(proxy.proxy.streams.size).toBe(1);
    const [ms] = time.pending as [number];
    expect(ms).toBeGreaterThan((TOKEN_TTL_S - 10) * 1000);
    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    time.advance(ms);
    const [code, reason] = await closed;
    expect(code).toBe(1008);
    expect(reason.toString()).toBe('connection lifetime exceeded');
    await waitFor(() => proxy.proxy.streams.size === 0, 5_000, 'registry empty');
    expect(await closedCount(proxy, 'kind="websocket",reason="expired"')).toBe(1);
  });
});

describe('MCP stream lifetime (mcp.maxStreamSeconds)', () => {
  it('ends the GET stream cleanly when the delegated token that opened it expires', async () => {
    const { time, upstream, proxy, user } = await setup();
    const client = await getStream(proxy, user);
    expect(client.status).toBe(200);
    await stillOpen(upstream, client, 0, 'first');
    // Armed for the delegated token's remaining lifetime (issued for TOKEN_TTL_S just now).
    expect(time.pending).toHaveLength(1);
    const [ms] = time.pending as [number];
    expect(ms).toBeGreaterThan((TOKEN_TTL_S - 10) * 1000);
    expect(ms).toBeLessThanOrEqual(TOKEN_TTL_S * 1000 + 1000);

    time.advance(ms - 1);
    await stillOpen(upstream, client, 0, 'just before expiry');
    time.advance(1);
    // A clean end (last chunk), not a reset: the client opens it again with a fresh token.
    expect(await client.ended).toBe('end');
    await waitFor(() => upstream.streams[0]?.closed === true, 5_000, 'upstream request closed');
    expect(proxy.proxy.streams.size).toBe(0);
    expect(time.pending).toEqual([]);
    expect(await closedCount(proxy, 'reason="expired"')).toBe(1);
    expect(await closedCount(proxy, 'kind="sse"')).toBe(1);
    await waitFor(() => proxy.logs.lines().some((l) => l.access === true), 5_000, 'access line');
    const line = proxy.logs.lines().find((l) => l.access === true);
    expect(line).toMatchObject({ status: 200, closeReason: 'expired' });
    expect(line?.aborted).not.toBe(true);
  });

  it('keeps the stream open past the token expiry with maxStreamSeconds: 0', async () => {
    const { time, upstream, proxy, user } = await setup({ maxStreamSeconds: 0 });
    const client = await getStream(proxy, user);
    await stillOpen(upstream, client, 0, 'first');
    expect(time.pending).toEqual([]);
    time.advance(10 * TOKEN_TTL_S * 1000);
    await stillOpen(upstream, client, 0, 'long after expiry');
    expect(client.done).toBe(false);
    // Still tracked (a revocation reaches it), and gone from the registry once the client leaves.
    expect(proxy.proxy.streams.size).toBe(1);
    client.close();
    await waitFor(() => proxy.proxy.streams.size === 0, 5_000, 'registry empty');
  });

  it('ends the stream after a positive maxStreamSeconds, which replaces the token expiry', async () => {
    const { time, upstream, proxy, user } = await setup({ maxStreamSeconds: 5 });
    const client = await getStream(proxy, user);
    await stillOpen(upstream, client, 0, 'first');
    expect(time.pending).toEqual([5_000]);
    time.advance(4_999);
    await stillOpen(upstream, client, 0, 'at 4.999 s');
    time.advance(1);
    expect(await client.ended).toBe('end');
    expect(await closedCount(proxy, 'reason="max_lifetime"')).toBe(1);
    expect(proxy.proxy.streams.size).toBe(0);
  });

  it('ends a 2026-07-28 subscriptions/listen POST stream at token expiry', async () => {
    const { time, upstream, proxy, user } = await setup();
    const client = await listen(proxy, user);
    expect(client.status).toBe(200);
    expect(upstream.streams[0]?.method).toBe('POST');
    await stillOpen(upstream, client, 0, '{"method":"notifications/tools/list_changed"}');
    expect(time.pending).toHaveLength(1);
    time.advance(time.pending[0] as number);
    expect(await client.ended).toBe('end');
    await waitFor(() => upstream.streams[0]?.closed === true, 5_000, 'upstream request closed');
    expect(proxy.proxy.streams.size).toBe(0);
  });

  it('leaves other MCP POST answers over SSE alone: not tracked, no timer', async () => {
    const { time, upstream, proxy, user } = await setup();
    const client = await listen(proxy, user, 'slow');
    expect(client.status).toBe(200);
    await stillOpen(upstream, client, 0, 'progress');
    expect(time.pending).toEqual([]);
    expect(proxy.proxy.streams.size).toBe(0);
    time.advance(10 * TOKEN_TTL_S * 1000);
    await stillOpen(upstream, client, 0, 'still going');
    client.close();
  });

  it('tracks SSE on a route without mcp for revocation, with no lifetime limit', async () => {
    const { time, upstream, proxy, user } = await setup();
    const client = await getStream(proxy, user, '/events');
    await stillOpen(upstream, client, 0, 'first');
    expect(proxy.proxy.streams.size).toBe(1);
    expect(time.pending).toEqual([]);
    // The upstream ends it: out of the registry.
    upstream.streams[0]?.res.end();
    expect(await client.ended).toBe('end');
    await waitFor(() => proxy.proxy.streams.size === 0, 5_000, 'registry empty');
  });
});
