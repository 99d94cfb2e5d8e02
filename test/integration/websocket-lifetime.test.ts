import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type CliProcess, startCli, started, writeConfig } from '../helpers/cli-process.js';
import { useClosers } from '../helpers/closers.js';
import { waitFor } from '../helpers/raw-http.js';
import { CLIENT_ID, startAs } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startWsUpstream, type TestWsUpstream } from '../helpers/start-ws-upstream.js';
import { echo, openProxyWs } from '../helpers/ws-client.js';

const closers = useClosers();

async function setup(
  routes: Array<Record<string, unknown>>,
  accessTokenTtlSeconds?: number,
): Promise<{ user: string; upstream: TestWsUpstream; proxy: TestProxy }> {
  const as = await startAs(accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds });
  closers.push(() => as.close());
  const upstream = await startWsUpstream();
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as,
    config: {
      cache: { clockSkewSeconds: 0, refreshAheadSeconds: 0 },
      routes: routes.map((r) => ({
        upstream: upstream.url,
        scopes: ['documents:read'],
        audience: 'https://docs.internal',
        ...r,
      })),
    },
  });
  closers.push(() => proxy.close());
  return { user: await as.userToken('alice', ['documents:read']), upstream, proxy };
}

describe('WebSocket lifetime (websocket.maxConnectionSeconds)', () => {
  it('closes a connection after maxConnectionSeconds with close code 1008, on both legs', async () => {
    const { user, upstream, proxy } = await setup([
      { name: 'short', match: { pathPrefix: '/' }, websocket: { maxConnectionSeconds: 1 } },
    ]);
    // Taken before connecting: the proxy arms the limit after the upstream's 101, so this is a lower
    // bound that holds however late the agent sees 'open' on a loaded machine.
    const openedAt = performance.now();
    const ws = await openProxyWs(closers, proxy.url, '/x', user);
    expect(await echo(ws, 'a')).toBe('a');
    const [server] = [...upstream.clients];
    const upstreamClosed = once(server!, 'close');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    const elapsed = performance.now() - openedAt;
    expect(code).toBe(1008);
    expect(reason.toString()).toBe('connection lifetime exceeded');
    expect(elapsed).toBeGreaterThanOrEqual(990);
    const [upstreamCode] = (await upstreamClosed) as [number];
    expect(upstreamCode).toBe(1008);
    await waitFor(() => proxy.logs.lines().some((l) => l.websocket === true), 5_000, 'access line');
    const line = proxy.logs.lines().find((l) => l.websocket === true);
    expect(line).toMatchObject({ closedBy: 'proxy', closeReason: 'max_lifetime' });
    expect(line?.cut).toBeUndefined();
  });

  it('by default closes when the delegated token expires; 0 means no limit', async () => {
    const { user, proxy } = await setup(
      [
        { name: 'bounded', match: { pathPrefix: '/bounded' } },
        { name: 'unbounded', match: { pathPrefix: '/unbounded' }, websocket: { maxConnectionSeconds: 0 } },
      ],
      2,
    );
    const bounded = await openProxyWs(closers, proxy.url, '/bounded', user);
    const unbounded = await openProxyWs(closers, proxy.url, '/unbounded', user);
    const openedAt = performance.now();
    const [code] = (await once(bounded, 'close')) as [number];
    expect(code).toBe(1008);
    // The 2 s token was issued just before the connection opened.
    expect(performance.now() - openedAt).toBeGreaterThanOrEqual(1000);
    // Its token has expired too, yet the unlimited connection stays open: the upstream owns it.
    expect(unbounded.readyState).toBe(WebSocket.OPEN);
    expect(await echo(unbounded, 'still here')).toBe('still here');
  });
});

describe('WebSocket connections at shutdown', () => {
  it('lets a WebSocket that ends during the grace period end on its own', async () => {
    const { user, proxy } = await setup([{ name: 'live', match: { pathPrefix: '/' } }]);
    const ws = await openProxyWs(closers, proxy.url, '/x', user);
    const closing = proxy.proxy.close(30_000);
    expect(await echo(ws, 'during grace')).toBe('during grace');
    ws.close(1000);
    const started = performance.now();
    await closing;
    // Well before the 30 s grace period: the proxy did not wait once the connection was gone.
    expect(performance.now() - started).toBeLessThan(10_000);
    const line = proxy.logs.lines().find((l) => l.websocket === true);
    expect(line).toMatchObject({ closedBy: 'client' });
  });

  it('closes open WebSockets (1001) when the grace period is over, and close() resolves', async () => {
    const { user, upstream, proxy } = await setup([{ name: 'live', match: { pathPrefix: '/' } }]);
    const a = await openProxyWs(closers, proxy.url, '/a', user);
    const b = await openProxyWs(closers, proxy.url, '/b', user);
    const closedA = once(a, 'close');
    const closedB = once(b, 'close');
    const started = performance.now();
    await proxy.proxy.close(300);
    const [[codeA], [codeB]] = (await Promise.all([closedA, closedB])) as [[number], [number]];
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(codeA).toBe(1001);
    expect(codeB).toBe(1001);
    await waitFor(() => upstream.clients.size === 0, 5_000, 'upstream legs closed');
    expect(proxy.proxy.websockets.count).toBe(0);
    const lines = proxy.logs.lines().filter((l) => l.websocket === true);
    expect(lines.map((l) => l.closeReason)).toEqual(['shutdown', 'shutdown']);
    // Both peers answered the close frames: nothing had to be cut after the linger time.
    expect(lines.map((l) => l.cut)).toEqual([undefined, undefined]);
    expect(proxy.logs.text()).toContain('closed WebSockets still open');
  });
});

describe('WebSocket connections on SIGTERM (the real CLI)', () => {
  it('closes an open WebSocket with 1001 when the grace period ends, then exits 0', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startWsUpstream();
    closers.push(() => upstream.close());
    const file = writeConfig({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
      shutdown: { drainDelaySeconds: 0, gracePeriodSeconds: 1 },
      routes: [{ name: 'live', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }],
    });
    const cli: CliProcess = startCli(['--config', file]);
    closers.push(() => cli.stop());
    const { url } = await started(cli);
    const user = await as.userToken('alice', ['documents:read']);
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/x`, { headers: { authorization: `Bearer ${user}` } });
    closers.push(() => ws.terminate());
    await once(ws, 'open');
    expect(await echo(ws, 'before')).toBe('before');
    const closed = once(ws, 'close');
    const signalledAt = performance.now();
    expect(cli.child.kill('SIGTERM')).toBe(true);
    const [code] = (await closed) as [number];
    expect(code).toBe(1001);
    // Not before the 1 s grace period: the connection was allowed to run on until then.
    expect(performance.now() - signalledAt).toBeGreaterThanOrEqual(990);
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    const line = cli.lines.find((l) => l.websocket === true);
    expect(line).toMatchObject({ status: 101, closedBy: 'proxy', closeReason: 'shutdown' });
    expect(cli.lines.map((l) => l.msg)).toContain('grace period over: closed WebSockets still open');
  }, 30_000);
});
