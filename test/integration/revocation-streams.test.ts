import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Timer } from '../../src/pipeline/timer.js';
import { useClosers } from '../helpers/closers.js';
import { waitFor } from '../helpers/raw-http.js';
import { AUDIENCE, revocationConfig, SSF_AUTHORIZATION } from '../helpers/revocation-config.js';
import { openSse, type SseClient } from '../helpers/sse-client.js';
import {
  push,
  SESSION_REVOKED,
  startTransmitter,
  TOKEN_CLAIMS_CHANGE,
  type Transmitter,
} from '../helpers/ssf-transmitter.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startSseUpstream, type TestSseUpstream } from '../helpers/start-sse-upstream.js';
import { startWsUpstream } from '../helpers/start-ws-upstream.js';
import { echo, openProxyWs } from '../helpers/ws-client.js';
import { admin } from './revocation-setup.js';

const closers = useClosers();
const READ = 'mcp:tools:read';
/** docs/revocation.md: a revoked user's open streams are closed within 1 s of the event. */
const WITHIN_MS = 1_000;

interface Setup {
  readonly as: TestAuthorizationServer;
  readonly tx: Transmitter;
  readonly sse: TestSseUpstream;
  readonly proxy: TestProxy;
  readonly alice: string;
  readonly bob: string;
}

/** Polls only when the test says so. */
const idleTimer: Timer = { set: () => () => {} };

async function setup(): Promise<Setup> {
  const as = await startAs();
  closers.push(() => as.close());
  const sse = await startSseUpstream();
  closers.push(() => sse.close());
  const ws = await startWsUpstream();
  closers.push(() => ws.close());
  const tx = await startTransmitter({ audience: AUDIENCE, pollAuthorization: SSF_AUTHORIZATION });
  closers.push(() => tx.close());
  const { revocation } = revocationConfig(tx, 'dp-revocation-streams-', {
    poll: { url: tx.pollUrl, intervalSeconds: 60, maxEvents: 10 },
  });
  const route = { scopes: [READ], audience: 'https://mcp.internal' };
  const proxy = await startProxy({
    as,
    deps: { revocationTimer: idleTimer },
    config: {
      revocation,
      routes: [
        { name: 'events', match: { pathPrefix: '/events' }, upstream: sse.url, ...route },
        { name: 'ws', match: { pathPrefix: '/ws' }, upstream: ws.url, ...route },
        {
          name: 'mcp',
          match: { pathPrefix: '/mcp' },
          upstream: sse.url,
          ...route,
          mcp: { methodScopes: { 'subscriptions/listen': [READ] } },
        },
      ],
    },
  });
  closers.push(() => proxy.close());
  return {
    as,
    tx,
    sse,
    proxy,
    alice: await as.userToken('alice', [READ]),
    bob: await as.userToken('bob', [READ]),
  };
}

function sseOf(proxy: TestProxy, user: string, path: string): Promise<SseClient> {
  return openSse(`${proxy.url}${path}`, { headers: { authorization: `Bearer ${user}`, accept: 'text/event-stream' } });
}

function listenOf(proxy: TestProxy, user: string): Promise<SseClient> {
  return openSse(`${proxy.url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${user}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'subscriptions/listen',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'subscriptions/listen',
      params: {
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': {},
        },
        notifications: { toolsListChanged: true },
      },
    }),
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

/** Sends an event on every upstream stream of `sub` and waits until `client` receives it. */
async function live(sse: TestSseUpstream, sub: string, client: SseClient, text: string): Promise<void> {
  for (const s of sse.streams) if (s.sub === sub && !s.closed) s.send(text);
  await client.received(text);
}

describe('revocation closes the open streams of the revoked user', () => {
  it('admin API: SSE, the MCP GET stream, subscriptions/listen and a WebSocket (1008) close within 1 s; another user keeps theirs', async () => {
    const { sse, proxy, alice, bob } = await setup();
    const aliceEvents = await sseOf(proxy, alice, '/events');
    const aliceGet = await sseOf(proxy, alice, '/mcp');
    const aliceListen = await listenOf(proxy, alice);
    const aliceWs = await openProxyWs(closers, proxy.url, '/ws/live', alice);
    const bobEvents = await sseOf(proxy, bob, '/events');
    const bobWs = await openProxyWs(closers, proxy.url, '/ws/live', bob);
    for (const c of [aliceEvents, aliceGet, aliceListen, bobEvents]) expect(c.status).toBe(200);
    await live(sse, 'alice', aliceListen, 'before');
    expect(proxy.proxy.streams.size).toBe(6);

    const wsClosed = once(aliceWs, 'close') as Promise<[number, Buffer]>;
    const started = performance.now();
    const res = await admin(proxy.adminUrl, 'POST', { sub: 'alice' });
    expect(res).toMatchObject({ status: 200, json: { closedStreams: 4 } });
    const ends = await within(
      Promise.all([aliceEvents.ended, aliceGet.ended, aliceListen.ended, wsClosed]),
      WITHIN_MS,
      "alice's streams closed",
    );
    const elapsed = performance.now() - started;
    // SSE ends cleanly (the client may re-open it, and is then refused: its token is revoked).
    expect(ends.slice(0, 3)).toEqual(['end', 'end', 'end']);
    const [code, reason] = ends[3];
    expect(code).toBe(1008);
    expect(reason.toString()).toBe('access revoked');
    expect(elapsed).toBeLessThan(WITHIN_MS);

    // Bob's stay open, end to end.
    await live(sse, 'bob', bobEvents, 'after');
    expect(await echo(bobWs, 'still here')).toBe('still here');
    expect(bobEvents.done).toBe(false);
    await waitFor(() => sse.streams.filter((s) => s.sub === 'alice').every((s) => s.closed), 5_000, 'upstream legs');
    expect(proxy.proxy.streams.size).toBe(2);

    const metrics = await proxy.registry.getSingleMetricAsString('delegate_proxy_streams_closed_total');
    expect(metrics).toContain('delegate_proxy_streams_closed_total{route="events",kind="sse",reason="revoked"} 1');
    expect(metrics).toContain('delegate_proxy_streams_closed_total{route="mcp",kind="sse",reason="revoked"} 2');
    expect(metrics).toContain('delegate_proxy_streams_closed_total{route="ws",kind="websocket",reason="revoked"} 1');
    expect(proxy.logs.lines().find((l) => l.audit === 'revocation')).toMatchObject({ sub: 'alice', closedStreams: 4 });
    await waitFor(() => proxy.logs.lines().some((l) => l.websocket === true), 5_000, 'WebSocket access line');
    expect(proxy.logs.lines().find((l) => l.websocket === true)).toMatchObject({
      sub: 'alice',
      closedBy: 'proxy',
      closeReason: 'revoked',
    });

    // The registry empties as the rest end.
    bobEvents.close();
    bobWs.close();
    await waitFor(() => proxy.proxy.streams.size === 0, 5_000, 'registry empty');
  });

  it('SSF push: a session-revoked event closes the streams of that user', async () => {
    const { as, tx, proxy, alice, bob } = await setup();
    const aliceEvents = await sseOf(proxy, alice, '/events');
    const aliceWs = await openProxyWs(closers, proxy.url, '/ws/live', alice);
    const bobEvents = await sseOf(proxy, bob, '/events');
    const wsClosed = once(aliceWs, 'close') as Promise<[number, Buffer]>;
    const set = await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: as.issuer, sub: 'alice' });
    expect((await push(proxy.adminUrl, set, SSF_AUTHORIZATION)).status).toBe(202);
    const [how, [code]] = await within(Promise.all([aliceEvents.ended, wsClosed]), WITHIN_MS, 'closed');
    expect(how).toBe('end');
    expect(code).toBe(1008);
    expect(bobEvents.done).toBe(false);
    expect(proxy.proxy.streams.size).toBe(1);
  });

  it('SSF poll: an event received by polling closes the streams of that user', async () => {
    const { as, tx, proxy, alice } = await setup();
    const aliceListen = await listenOf(proxy, alice);
    const set = await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: as.issuer, sub: 'alice' }, { jti: 'p-1' });
    tx.queue.set('p-1', set);
    await proxy.proxy.revocation.poller?.tick();
    expect(await within(aliceListen.ended, WITHIN_MS, 'closed')).toBe('end');
    expect(proxy.proxy.streams.size).toBe(0);
  });

  it('an evict-only event (token-claims-change) closes that user\u2019s streams too', async () => {
    const { as, tx, proxy, alice, bob } = await setup();
    const aliceEvents = await sseOf(proxy, alice, '/events');
    const bobEvents = await sseOf(proxy, bob, '/events');
    const set = await tx.event(TOKEN_CLAIMS_CHANGE, { format: 'iss_sub', iss: as.issuer, sub: 'alice' });
    expect((await push(proxy.adminUrl, set, SSF_AUTHORIZATION)).status).toBe(202);
    expect(await within(aliceEvents.ended, WITHIN_MS, 'closed')).toBe('end');
    expect(bobEvents.done).toBe(false);
    // Alice is not refused: her stream opens again.
    const again = await sseOf(proxy, alice, '/events');
    expect(again.status).toBe(200);
    expect(proxy.proxy.streams.size).toBe(2);
  });

  it('matches as the revocation list does: a stream opened with a token issued after the event stays open', async () => {
    const { as, tx, sse, proxy, alice } = await setup();
    const aliceEvents = await sseOf(proxy, alice, '/events');
    // The event happened a minute before alice's current token was issued.
    const set = await tx.event(
      SESSION_REVOKED,
      { format: 'iss_sub', iss: as.issuer, sub: 'alice' },
      { eventTimestamp: Math.floor(Date.now() / 1000) - 60 },
    );
    expect((await push(proxy.adminUrl, set, SSF_AUTHORIZATION)).status).toBe(202);
    await live(sse, 'alice', aliceEvents, 'newer token, still open');
    expect(proxy.proxy.streams.size).toBe(1);
    // Another issuer's alice is someone else.
    const other = await tx.event(SESSION_REVOKED, { format: 'iss_sub', iss: 'https://other.example', sub: 'alice' });
    expect((await push(proxy.adminUrl, other, SSF_AUTHORIZATION)).status).toBe(202);
    await live(sse, 'alice', aliceEvents, 'other issuer, still open');
    expect(proxy.proxy.streams.size).toBe(1);
  });
});
