import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';
import { unusedAddress } from '../helpers/unused-address.js';

const closers = useClosers();

async function setup(
  options: {
    routes?: (upstream: TestUpstream) => Record<string, unknown>[];
    upstream?: Parameters<typeof startUpstream>[0];
    config?: Record<string, unknown>;
    accessTokenTtlSeconds?: number;
  } = {},
): Promise<{ as: TestAuthorizationServer; upstream: TestUpstream; proxy: TestProxy }> {
  const as = await startAs(
    options.accessTokenTtlSeconds ? { accessTokenTtlSeconds: options.accessTokenTtlSeconds } : {},
  );
  closers.push(() => as.close());
  const upstream = await startUpstream(options.upstream);
  closers.push(() => upstream.close());
  const routes = options.routes?.(upstream) ?? [
    {
      name: 'documents',
      match: { pathPrefix: '/documents' },
      upstream: `${upstream.url}/api`,
      stripPrefix: true,
      scopes: ['documents:read'],
      audience: 'https://docs.internal',
    },
  ];
  const proxy = await startProxy({ as, config: { routes, ...options.config } });
  closers.push(() => proxy.close());
  return { as, upstream, proxy };
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    text,
    json: () => JSON.parse(text) as Record<string, unknown>,
  };
}

describe('delegated token reaches the upstream', () => {
  it('replaces the user token with a delegated JWT carrying the route scope and audience', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read', 'documents:write']);
    const res = await get(`${proxy.url}/documents/report.txt?v=1`, { ...bearer(user), 'x-request-id': 'req-42' });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-42');
    expect(upstream.requests).toHaveLength(1);
    const seen = upstream.requests[0]!;
    expect(seen.url).toBe('/api/report.txt?v=1');
    const auth = seen.headers.authorization ?? '';
    expect(auth).toMatch(/^Bearer /);
    const delegated = auth.slice('Bearer '.length);
    expect(delegated).not.toBe(user);
    const claims = decodeJwt(delegated);
    expect(claims.sub).toBe('alice');
    expect(claims.scope).toBe('documents:read');
    expect(claims.aud).toBe('https://docs.internal');
    expect(claims.act).toBeUndefined();
    // The user's token is nowhere in what the upstream received.
    expect(seen.rawHeaders.join('\n')).not.toContain(user);
    expect(seen.body).not.toContain(user);
    expect(seen.headers['x-request-id']).toBe('req-42');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(new URL(proxy.url).host);
    // The exchange at the AS carried every RFC 8693 parameter of the route.
    const ex = as.exchanges.at(-1)!;
    expect(ex.params).toMatchObject({
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'documents:read',
      audience: 'https://docs.internal',
    });
    expect(ex.outcome).toBe('issued');
  });

  it('sends the agent identity as actor_token and the delegated token carries act', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const actorFile = join(mkdtempSync(join(tmpdir(), 'dp-actor-')), 'token');
    writeFileSync(actorFile, await as.issueActorToken({ sub: 'system:serviceaccount:agents:research-agent' }));
    const proxy = await startProxy({
      as,
      config: {
        actorToken: { file: actorFile },
        routes: [
          {
            name: 'r',
            match: { pathPrefix: '/r' },
            upstream: upstream.url,
            scopes: ['documents:read'],
            resource: 'https://docs.internal/',
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('bob', ['documents:read']);
    const res = await get(`${proxy.url}/r/x`, bearer(user));
    expect(res.status).toBe(200);
    const claims = decodeJwt((upstream.requests[0]!.headers.authorization ?? '').slice(7));
    expect(claims.act).toEqual({ sub: 'system:serviceaccount:agents:research-agent' });
    expect(claims.aud).toBe('https://docs.internal/');
    expect(as.exchanges.at(-1)!.params).toMatchObject({
      actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      resource: 'https://docs.internal/',
    });
  });

  it('streams a request body upstream unchanged and without the user token', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const body = JSON.stringify({ hello: 'world', big: 'x'.repeat(200_000) });
    const res = await request(`${proxy.url}/documents/upload`, {
      method: 'POST',
      headers: { ...bearer(user), 'content-type': 'application/json' },
      body,
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(upstream.requests[0]!.body).toBe(body);
  });
});

describe('token cache at the authorization server', () => {
  it('200 concurrent first requests for one user and route cause exactly one exchange', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    const results = await Promise.all(Array.from({ length: 200 }, () => get(`${proxy.url}/documents/a`, bearer(user))));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(as.exchanges).toHaveLength(1);
    expect(upstream.requests).toHaveLength(200);
    const tokens = new Set(upstream.requests.map((r) => r.headers.authorization));
    expect(tokens.size).toBe(1);
  });

  it('two users cause two exchanges, and each gets their own delegated token', async () => {
    const { as, upstream, proxy } = await setup();
    const alice = await as.userToken('alice', ['documents:read']);
    const bob = await as.userToken('bob', ['documents:read']);
    await Promise.all([
      ...Array.from({ length: 20 }, () => get(`${proxy.url}/documents/a`, bearer(alice))),
      ...Array.from({ length: 20 }, () => get(`${proxy.url}/documents/a`, bearer(bob))),
    ]);
    expect(as.exchanges).toHaveLength(2);
    const subs = new Set(upstream.requests.map((r) => decodeJwt((r.headers.authorization ?? '').slice(7)).sub));
    expect(subs).toEqual(new Set(['alice', 'bob']));
  });

  it('routes with equal exchange parameters share one cached token', async () => {
    const { as, proxy } = await setup({
      routes: (u) => [
        { name: 'a', match: { pathPrefix: '/a' }, upstream: u.url, scopes: ['documents:read'] },
        { name: 'b', match: { pathPrefix: '/b' }, upstream: u.url, scopes: ['documents:read'] },
      ],
    });
    const user = await as.userToken('alice', ['documents:read']);
    expect((await get(`${proxy.url}/a/1`, bearer(user))).status).toBe(200);
    expect((await get(`${proxy.url}/b/1`, bearer(user))).status).toBe(200);
    expect(as.exchanges).toHaveLength(1);
  });
});

describe('errors the agent gets', () => {
  it('no token -> 401 with a bare Bearer challenge and a JSON body', async () => {
    const { proxy, upstream } = await setup();
    const res = await get(`${proxy.url}/documents/a`);
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="delegate-proxy"');
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json()).toEqual({ error: 'invalid_token', error_description: 'a bearer token is required' });
    expect(upstream.requests).toHaveLength(0);
  });

  it('malformed Authorization header -> 401 invalid_token', async () => {
    const { proxy } = await setup();
    for (const value of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'Bearer "quoted"']) {
      const res = await get(`${proxy.url}/documents/a`, { authorization: value });
      expect(res.status, value).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
      expect(res.json().error).toBe('invalid_token');
    }
  });

  it('AS invalid_grant (a user token from another issuer) -> 401 invalid_token', async () => {
    const { as, proxy, upstream } = await setup();
    const foreignAs = await startAs();
    closers.push(() => foreignAs.close());
    const foreign = await foreignAs.userToken('alice', ['documents:read']);
    const res = await get(`${proxy.url}/documents/a`, bearer(foreign));
    expect(res.status).toBe(401);
    expect(res.json().error).toBe('invalid_token');
    expect(as.exchanges.at(-1)!.outcome).toBe('invalid_grant');
    expect(upstream.requests).toHaveLength(0);
  });

  it('an expired user token -> 401 before any exchange', async () => {
    const { as, proxy, upstream } = await setup();
    const expired = await as.userToken('alice', ['documents:read'], -60);
    const res = await get(`${proxy.url}/documents/a`, bearer(expired));
    expect(res.status).toBe(401);
    expect(res.json()).toEqual({ error: 'invalid_token', error_description: 'the user token has expired' });
    expect(as.exchanges).toHaveLength(0);
    expect(upstream.requests).toHaveLength(0);
  });

  it('AS invalid_scope -> 403 insufficient_scope with the scope in the challenge', async () => {
    const { as, proxy, upstream } = await setup();
    const user = await as.userToken('carol', ['calendar:read']);
    const res = await get(`${proxy.url}/documents/a`, bearer(user));
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      'Bearer realm="delegate-proxy", error="insufficient_scope", scope="documents:read"',
    );
    expect(res.json().error).toBe('insufficient_scope');
    // The AS's own description is an operator detail, not for the agent.
    expect(res.text).not.toMatch(/requested scope/i);
    expect(upstream.requests).toHaveLength(0);
  });

  it('AS down -> 503 temporarily_unavailable with Retry-After, and no fallback to the user token', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const as = await startAs();
    closers.push(() => as.close());
    const user = await as.userToken('alice', ['documents:read']);
    const secretFile = as.secretFile;
    const tokenEndpoint = `${(await unusedAddress()).url}/token`;
    const proxy = await startProxy({
      config: {
        authorizationServer: { tokenEndpoint, clientId: 'agent-service', clientSecretFile: secretFile, timeoutMs: 500 },
        routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['documents:read'] }],
      },
    });
    closers.push(() => proxy.close());
    const res = await get(`${proxy.url}/r/a`, bearer(user));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().error).toBe('temporarily_unavailable');
    expect(upstream.requests).toHaveLength(0);
  });

  it('AS timing out -> 503 within the AS timeout', async () => {
    const stall = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    closers.push(() => closeServer(stall));
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const as = await startAs();
    closers.push(() => as.close());
    const user = await as.userToken('alice', ['documents:read']);
    const proxy = await startProxy({
      config: {
        authorizationServer: {
          tokenEndpoint: `http://127.0.0.1:${(stall.address() as AddressInfo).port}/token`,
          clientId: 'agent-service',
          clientSecretFile: as.secretFile,
          timeoutMs: 300,
        },
        routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url }],
      },
    });
    closers.push(() => proxy.close());
    const started = performance.now();
    const res = await get(`${proxy.url}/r/a`, bearer(user));
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(upstream.requests).toHaveLength(0);
  });

  it('upstream down -> 502 bad_gateway', async () => {
    const down = await unusedAddress();
    const { as, proxy } = await setup({
      routes: () => [{ name: 'down', match: { pathPrefix: '/documents' }, upstream: down.url }],
    });
    const user = await as.userToken('alice', ['documents:read']);
    const res = await get(`${proxy.url}/documents/a`, bearer(user));
    expect(res.status).toBe(502);
    expect(res.json()).toEqual({ error: 'bad_gateway', error_description: 'the upstream could not be reached' });
  });

  it('upstream slower than the route timeout -> 504 gateway_timeout', async () => {
    const { as, proxy } = await setup({
      upstream: (_req, res) => {
        setTimeout(() => res.end('late'), 2_000).unref();
      },
      routes: (u) => [{ name: 'slow', match: { pathPrefix: '/slow' }, upstream: u.url, timeoutMs: 200 }],
    });
    const user = await as.userToken('alice', ['documents:read']);
    const started = performance.now();
    const res = await get(`${proxy.url}/slow/a`, bearer(user));
    expect(res.status).toBe(504);
    expect(res.json().error).toBe('gateway_timeout');
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('unknown route -> 404 no_route, before any exchange', async () => {
    const { as, proxy } = await setup();
    const user = await as.userToken('alice', ['documents:read']);
    for (const path of ['/nothing', '/documentsX/a', '/']) {
      const res = await get(`${proxy.url}${path}`, bearer(user));
      expect(res.status, path).toBe(404);
      expect(res.json().error).toBe('no_route');
    }
    expect(as.exchanges).toHaveLength(0);
  });
});

describe('never an open proxy', () => {
  it('a Host header naming another server still goes only to the configured upstream', async () => {
    const { as, proxy, upstream } = await setup();
    const other = await startUpstream();
    closers.push(() => other.close());
    const user = await as.userToken('alice', ['documents:read']);
    const res = await get(`${proxy.url}/documents/a`, { ...bearer(user), host: new URL(other.url).host });
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    expect(other.requests).toHaveLength(0);
  });

  it('an absolute-form request target naming another server is refused and reaches no one', async () => {
    const { as, proxy, upstream } = await setup();
    const other = await startUpstream();
    closers.push(() => other.close());
    const user = await as.userToken('alice', ['documents:read']);
    const { port } = new URL(proxy.url);
    const raw = await rawRequest(
      Number(port),
      `GET ${other.url}/documents/a HTTP/1.1\r\nHost: ${new URL(other.url).host}\r\nAuthorization: Bearer ${user}\r\nConnection: close\r\n\r\n`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).not.toContain(user);
    expect(other.requests).toHaveLength(0);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('streaming', () => {
  it('SSE events pass through one by one, the first well before the stream ends', async () => {
    const { as, proxy } = await setup({
      upstream: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let n = 0;
        const timer = setInterval(() => {
          n += 1;
          res.write(`id: ${n}\ndata: event ${n}\n\n`);
          if (n === 10) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.on('close', () => clearInterval(timer));
      },
      routes: (u) => [{ name: 'events', match: { pathPrefix: '/events' }, upstream: u.url }],
    });
    const user = await as.userToken('alice', ['documents:read']);
    const started = performance.now();
    const res = await request(`${proxy.url}/events/stream`, {
      headers: { ...bearer(user), accept: 'text/event-stream' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const arrivals: Array<{ at: number; text: string }> = [];
    for await (const chunk of res.body) arrivals.push({ at: performance.now() - started, text: chunk.toString() });
    const all = arrivals.map((a) => a.text).join('');
    expect(all).toContain('data: event 1\n\n');
    expect(all).toContain('data: event 10\n\n');
    const first = arrivals.find((a) => a.text.includes('event 1\n'))!;
    const last = arrivals.at(-1)!;
    // 10 events 100 ms apart: the first must not wait for the last.
    expect(first.at).toBeLessThan(last.at - 500);
    expect(arrivals.length).toBeGreaterThanOrEqual(5);
  });
});

describe('an upstream that dies mid-response', () => {
  it('cuts the client stream instead of leaving it hanging', async () => {
    const { as, proxy } = await setup({
      upstream: (_req, res) => {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('only part of it');
        setTimeout(() => res.socket?.destroy(), 50).unref();
      },
      routes: (u) => [{ name: 'cut', match: { pathPrefix: '/cut' }, upstream: u.url }],
    });
    const user = await as.userToken('alice', ['documents:read']);
    const res = await request(`${proxy.url}/cut/a`, { headers: bearer(user) });
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
  });
});

describe('upstream 401 on a cached token', () => {
  it('evicts the token, exchanges once more and retries once', async () => {
    let refuse = false;
    const { as, proxy, upstream } = await setup({
      upstream: (_req, res) => {
        if (refuse) {
          refuse = false;
          res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
          res.end();
          return;
        }
        res.end('ok');
      },
    });
    const user = await as.userToken('alice', ['documents:read']);
    expect((await get(`${proxy.url}/documents/a`, bearer(user))).status).toBe(200);
    refuse = true;
    const res = await request(`${proxy.url}/documents/b`, { method: 'PUT', headers: bearer(user), body: 'payload' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
    expect(as.exchanges).toHaveLength(2);
    expect(upstream.requests).toHaveLength(3);
    expect(upstream.requests[2]!.body).toBe('payload');
    expect(upstream.requests[2]!.headers.authorization).not.toBe(upstream.requests[1]!.headers.authorization);
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain('delegate_proxy_token_refreshes_total{route="documents",trigger="invalidated"} 1');
  });
});

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    socket.on('data', (d) => {
      data += d.toString();
    });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}
