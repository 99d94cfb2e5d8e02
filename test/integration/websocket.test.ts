import { once } from 'node:events';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { useClosers } from '../helpers/closers.js';
import { rawRequest, statusOf, waitFor } from '../helpers/raw-http.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startWsUpstream, type TestWsUpstream, type WsUpstreamOptions } from '../helpers/start-ws-upstream.js';

const closers = useClosers();

async function setup(
  options: { upstream?: WsUpstreamOptions; route?: Record<string, unknown>; config?: Record<string, unknown> } = {},
): Promise<{ as: TestAuthorizationServer; upstream: TestWsUpstream; proxy: TestProxy }> {
  const as = await startAs();
  closers.push(() => as.close());
  const upstream = await startWsUpstream(options.upstream);
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as,
    config: {
      routes: [
        {
          name: 'live',
          match: { pathPrefix: '/live' },
          upstream: `${upstream.url}/rt`,
          stripPrefix: true,
          scopes: ['documents:read'],
          audience: 'https://docs.internal',
          ...options.route,
        },
      ],
      ...options.config,
    },
  });
  closers.push(() => proxy.close());
  return { as, upstream, proxy };
}

function wsUrl(proxy: TestProxy, path: string): string {
  return `${proxy.url.replace(/^http/, 'ws')}${path}`;
}

/** Opens a client WebSocket; resolves once open, rejects with the HTTP status of a refusal. */
async function connect(url: string, headers: Record<string, string> = {}, protocols?: string[]): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, { headers });
  closers.push(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })),
    );
    ws.once('error', reject);
  });
  return ws;
}

async function send(ws: WebSocket, text: string): Promise<string> {
  ws.send(text);
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}

function handshake(path: string, headers: Record<string, string>): string {
  const lines = Object.entries({
    host: 'localhost',
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
  }).map(([k, v]) => `${k}: ${v}\r\n`);
  return `GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`;
}

function bodyOf(raw: string): Record<string, unknown> {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

function headerOf(raw: string, name: string): string | undefined {
  const m = new RegExp(`^${name}: (.*)$`, 'im').exec(raw.slice(0, raw.indexOf('\r\n\r\n')));
  return m?.[1]?.trim();
}

describe('WebSocket upgrade with a delegated token', () => {
  it('echoes across the proxy; the upstream gets a delegated token for the same user, never the user token', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const ws = await connect(wsUrl(proxy, '/live/chat?room=1'), {
      authorization: `Bearer ${user}`,
      'x-request-id': 'ws-req-1',
      cookie: 'theme=dark',
    });
    expect(await send(ws, 'hello')).toBe('hello');
    const seen = JSON.parse(await send(ws, 'whoami')) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/rt/chat?room=1');
    const auth = seen.headers.authorization ?? '';
    expect(auth).toMatch(/^Bearer /);
    const delegated = auth.slice('Bearer '.length);
    expect(delegated).not.toBe(user);
    const claims = decodeJwt(delegated);
    expect(claims.sub).toBe('alice');
    expect(claims.aud).toBe('https://docs.internal');
    expect(String(claims.scope).split(' ')).toContain('documents:read');
    expect(seen.headers['x-request-id']).toBe('ws-req-1');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(proxy.url).host);
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    // The user token in no header, the URL or a cookie of the upstream handshake.
    expect(JSON.stringify(upstream.handshakes)).not.toContain(user);
    // Binary frames pass unchanged.
    ws.send(Buffer.from([0, 1, 2, 255]));
    const [bin] = (await once(ws, 'message')) as [Buffer];
    expect([...bin]).toEqual([0, 1, 2, 255]);
    ws.close(1000, 'bye');
    const [code] = (await once(ws, 'close')) as [number];
    expect(code).toBe(1000);
    await waitFor(() => proxy.logs.lines().some((l) => l.websocket === true), 5_000, 'access line');
    const line = proxy.logs.lines().find((l) => l.websocket === true)!;
    expect(line).toMatchObject({
      reqId: 'ws-req-1',
      route: 'live',
      status: 101,
      upstreamStatus: 101,
      sub: 'alice',
      closedBy: 'client',
    });
    expect(line.bytesFromClient).toBeGreaterThan(0);
    expect(line.bytesFromUpstream).toBeGreaterThan(0);
    expect(proxy.logs.text()).not.toContain(user);
    expect(proxy.logs.text()).not.toContain(delegated);
    const metrics = await proxy.registry.metrics();
    expect(metrics).toContain('delegate_proxy_websocket_connections_total{route="live",outcome="opened"} 1');
    await waitFor(() => proxy.proxy.agentServer.listening, 1000);
  });

  it('answers an upgrade without a token with 401 and a bare Bearer challenge, before any upstream contact', async () => {
    const { upstream, proxy } = await setup();
    const raw = await rawRequest(proxy.url, handshake('/live/chat', {}));
    expect(statusOf(raw)).toBe(401);
    expect(headerOf(raw, 'www-authenticate')).toBe('Bearer realm="delegate-proxy"');
    expect(headerOf(raw, 'content-type')).toBe('application/json');
    expect(bodyOf(raw)).toEqual({ error: 'invalid_token', error_description: 'a bearer token is required' });
    expect(upstream.handshakes).toHaveLength(0);
    expect(await proxy.registry.metrics()).toContain(
      'delegate_proxy_websocket_connections_total{route="live",outcome="refused"} 1',
    );
  });

  it('refuses upgrades on a route with websocket disabled: 403 websocket_disabled, no exchange, no upstream contact', async () => {
    const { as, upstream, proxy } = await setup({ route: { websocket: false } });
    const user = await as.userToken('alice', ['documents:read']);
    const raw = await rawRequest(proxy.url, handshake('/live/chat', { authorization: `Bearer ${user}` }));
    expect(statusOf(raw)).toBe(403);
    expect(bodyOf(raw)).toEqual({
      error: 'websocket_disabled',
      error_description: 'WebSocket upgrades are not enabled on this route',
    });
    expect(headerOf(raw, 'www-authenticate')).toBeUndefined();
    expect(upstream.handshakes).toHaveLength(0);
    expect(await proxy.registry.metrics()).not.toMatch(/token_exchanges_total\{/);
  });

  it('refuses a handshake that carries the user token anywhere else (subprotocol, query)', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const viaProtocol = await rawRequest(
      proxy.url,
      handshake('/live/chat', { authorization: `Bearer ${user}`, 'sec-websocket-protocol': `bearer, ${user}` }),
    );
    expect(statusOf(viaProtocol)).toBe(400);
    const viaQuery = await rawRequest(
      proxy.url,
      handshake(`/live/chat?access_token=${encodeURIComponent(user)}`, { authorization: `Bearer ${user}` }),
    );
    expect(statusOf(viaQuery)).toBe(400);
    expect(bodyOf(viaQuery).error).toBe('invalid_request');
    expect(upstream.handshakes).toHaveLength(0);
  });

  it('passes a subprotocol the upstream picks back to the agent', async () => {
    const { as, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const ws = await connect(wsUrl(proxy, '/live/chat'), { authorization: `Bearer ${user}` }, ['chat.v2', 'chat.v1']);
    expect(ws.protocol).toBe('chat.v2');
    expect(await send(ws, 'x')).toBe('x');
  });

  it('relays an upstream 403 insufficient_scope challenge to the agent', async () => {
    const challenge = 'Bearer error="insufficient_scope", scope="documents:admin"';
    const { as, upstream, proxy } = await setup({
      upstream: {
        refuse: (_h, _n, res) => {
          res.writeHead(403, { 'www-authenticate': challenge, 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'insufficient_scope' }));
          return true;
        },
      },
    });
    const user = await as.userToken('alice', ['documents:read']);
    const raw = await rawRequest(
      proxy.url,
      handshake('/live/chat', { authorization: `Bearer ${user}`, 'x-request-id': 'r-403' }),
    );
    expect(statusOf(raw)).toBe(403);
    expect(headerOf(raw, 'www-authenticate')).toBe(challenge);
    expect(headerOf(raw, 'x-request-id')).toBe('r-403');
    expect(bodyOf(raw)).toEqual({ error: 'insufficient_scope' });
    expect(upstream.handshakes).toHaveLength(1);
    expect(await proxy.registry.metrics()).toContain(
      'delegate_proxy_websocket_connections_total{route="live",outcome="upstream_error"} 1',
    );
  });

  it('relays an upstream 5xx answer as it came', async () => {
    const { as, proxy } = await setup({
      upstream: {
        refuse: (_h, _n, res) => {
          res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '7' });
          res.end('maintenance');
          return true;
        },
      },
    });
    const user = await as.userToken('alice', ['documents:read']);
    const raw = await rawRequest(proxy.url, handshake('/live/chat', { authorization: `Bearer ${user}` }));
    expect(statusOf(raw)).toBe(503);
    expect(headerOf(raw, 'retry-after')).toBe('7');
    expect(raw.endsWith('maintenance')).toBe(true);
  });

  it('on an upstream 401 for a cached token: evicts it, exchanges once and retries the handshake once', async () => {
    const { as, upstream, proxy } = await setup({
      upstream: {
        // The second handshake (first WebSocket, cached token) is refused once; the retry is accepted.
        refuse: (_h, n, res) => {
          if (n !== 2) return false;
          res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
          res.end();
          return true;
        },
      },
    });
    const user = await as.userToken('alice', ['documents:read']);
    const first = await connect(wsUrl(proxy, '/live/a'), { authorization: `Bearer ${user}` });
    expect(await send(first, 'one')).toBe('one');
    const second = await connect(wsUrl(proxy, '/live/b'), { authorization: `Bearer ${user}` });
    expect(await send(second, 'two')).toBe('two');
    expect(upstream.handshakes).toHaveLength(3);
    const tokens = upstream.handshakes.map((h) => h.headers.authorization);
    expect(tokens[1]).toBe(tokens[0]); // the cached token, refused
    expect(tokens[2]).not.toBe(tokens[1]); // a fresh exchange
    const metrics = await proxy.registry.metrics();
    expect(metrics).toMatch(/delegate_proxy_token_exchanges_total\{route="live",outcome="success"\} 2/);
  });

  it('relays the second 401 when the fresh token is refused too (one retry only)', async () => {
    const { as, upstream, proxy } = await setup({
      upstream: {
        refuse: (_h, n, res) => {
          if (n === 1) return false;
          res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
          res.end();
          return true;
        },
      },
    });
    const user = await as.userToken('alice', ['documents:read']);
    const first = await connect(wsUrl(proxy, '/live/a'), { authorization: `Bearer ${user}` });
    first.close();
    const raw = await rawRequest(proxy.url, handshake('/live/b', { authorization: `Bearer ${user}` }));
    expect(statusOf(raw)).toBe(401);
    expect(upstream.handshakes).toHaveLength(3);
  });

  it('answers 502 when the upstream cannot be reached', async () => {
    const { as, upstream, proxy } = await setup();
    await upstream.close();
    const user = await as.userToken('alice', ['documents:read']);
    const raw = await rawRequest(proxy.url, handshake('/live/chat', { authorization: `Bearer ${user}` }));
    expect(statusOf(raw)).toBe(502);
    expect(bodyOf(raw).error).toBe('bad_gateway');
    expect(await proxy.registry.metrics()).toContain(
      'delegate_proxy_websocket_connections_total{route="live",outcome="upstream_error"} 1',
    );
  });

  it('closes the agent side when the upstream closes, and the upstream side when the agent goes away', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const a = await connect(wsUrl(proxy, '/live/a'), { authorization: `Bearer ${user}` });
    await send(a, 'x');
    for (const c of upstream.clients) c.close(4000, 'done');
    const [code, reason] = (await once(a, 'close')) as [number, Buffer];
    expect(code).toBe(4000);
    expect(reason.toString()).toBe('done');
    const b = await connect(wsUrl(proxy, '/live/b'), { authorization: `Bearer ${user}` });
    await send(b, 'y');
    b.terminate(); // abrupt: no close frame
    await waitFor(() => upstream.clients.size === 0, 5_000, 'upstream side closed');
    await waitFor(() => proxy.logs.lines().filter((l) => l.websocket === true).length === 2, 5_000, 'two access lines');
    const closedBy = proxy.logs
      .lines()
      .filter((l) => l.websocket === true)
      .map((l) => l.closedBy);
    expect(closedBy).toEqual(['upstream', 'client']);
    expect(await proxy.registry.metrics()).toContain('delegate_proxy_websocket_connections{route="live"} 0');
  });
});

describe('other upgrades', () => {
  it('serves a non-WebSocket Upgrade (h2c) as a plain request, the upgrade header removed', async () => {
    const { as, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const raw = await rawRequest(
      proxy.url,
      `GET /live/plain HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade, HTTP2-Settings, close\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\nauthorization: Bearer ${user}\r\n\r\n`,
    );
    // The ws upstream answers plain GETs with 426: the request reached it as a plain GET, not as an upgrade.
    expect(statusOf(raw)).toBe(426);
  });
});
