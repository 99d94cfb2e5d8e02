import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createProxy } from '../../src/app.js';
import { resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { useClosers } from '../helpers/closers.js';
import { useFileAs } from '../helpers/file-as.js';
import { createLogSink } from '../helpers/log-sink.js';
import { rawRequest, statusOf } from '../helpers/raw-http.js';
import { CLIENT_ID, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

// One AS for the file; proxy and upstreams per test.
const fileAs = useFileAs();

interface Setup {
  as: TestAuthorizationServer;
  exchangesBefore: number;
  upstream: TestUpstream;
  other: TestUpstream;
  proxy: TestProxy;
  user: string;
  host: string;
}

async function setup(config: Record<string, unknown> = {}, route: Record<string, unknown> = {}): Promise<Setup> {
  const exchangesBefore = fileAs().exchanges.length;
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const other = await startUpstream();
  closers.push(() => other.close());
  const proxy = await startProxy({
    as: fileAs(),
    config: {
      routes: [
        {
          name: 'docs',
          match: { pathPrefix: '/docs' },
          upstream: `${upstream.url}/api`,
          stripPrefix: true,
          scopes: ['documents:read'],
          ...route,
        },
      ],
      ...config,
    },
  });
  closers.push(() => proxy.close());
  const user = await fileAs().userToken('alice', ['documents:read']);
  return { as: fileAs(), exchangesBefore, upstream, other, proxy, user, host: new URL(proxy.url).host };
}

function expectNothingLeaked(s: Setup, raw: string): void {
  expect(raw).not.toContain(s.user);
  expect(s.upstream.requests).toHaveLength(0);
  expect(s.other.requests).toHaveLength(0);
  expect(s.as.exchanges.length - s.exchangesBefore).toBe(0);
}

describe('request hygiene: targets', () => {
  it('CONNECT is refused with 405 and opens no tunnel', async () => {
    const s = await setup();
    const target = new URL(s.other.url).host;
    const raw = await rawRequest(
      s.proxy.url,
      `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nAuthorization: Bearer ${s.user}\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(405);
    expectNothingLeaked(s, raw);
  });

  it('absolute-form target naming another host is refused with 400 and reaches no one', async () => {
    const s = await setup();
    const raw = await rawRequest(
      s.proxy.url,
      `GET ${s.other.url}/docs/a HTTP/1.1\r\nHost: ${new URL(s.other.url).host}\r\nAuthorization: Bearer ${s.user}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
    expect(raw).toContain('"error":"invalid_request"');
    expectNothingLeaked(s, raw);
  });

  it('".." segments escaping the route prefix are refused with 400', async () => {
    const s = await setup();
    const raw = await rawRequest(
      s.proxy.url,
      `GET /docs/../admin/secrets HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nConnection: close\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
    expectNothingLeaked(s, raw);
  });

  it('percent-encoded "%2e%2e" segments are refused with 400', async () => {
    const s = await setup();
    for (const path of ['/docs/%2e%2e/admin', '/docs/%2E%2E/admin', '/docs/.%2e/admin', '/docs/%2e%2e%2fadmin']) {
      const raw = await rawRequest(
        s.proxy.url,
        `GET ${path} HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nConnection: close\r\n\r\n`,
      );
      expect(statusOf(raw), path).toBe(400);
    }
    expect(s.upstream.requests).toHaveLength(0);
    expect(s.as.exchanges.length - s.exchangesBefore).toBe(0);
  });

  it('a harmless "." inside a file name is still forwarded', async () => {
    const s = await setup();
    const res = await request(`${s.proxy.url}/docs/report.v1.txt`, { headers: { authorization: `Bearer ${s.user}` } });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(s.upstream.requests[0]!.url).toBe('/api/report.v1.txt');
  });
});

describe('request hygiene: framing (request smuggling)', () => {
  it('Content-Length together with Transfer-Encoding is refused with 400', async () => {
    const s = await setup();
    const raw = await rawRequest(
      s.proxy.url,
      `POST /docs/a HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /docs/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(400);
    expect(raw.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expectNothingLeaked(s, raw);
  });

  it('duplicate Content-Length headers are refused with 400', async () => {
    const s = await setup();
    const raw = await rawRequest(
      s.proxy.url,
      `POST /docs/a HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\nhello`,
    );
    expect(statusOf(raw)).toBe(400);
    expectNothingLeaked(s, raw);
  });

  it('a chunked request body on GET, DELETE, OPTIONS or POST stays framed upstream (no smuggled second request)', async () => {
    const s = await setup();
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
    const chunk = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
    for (const method of ['GET', 'DELETE', 'OPTIONS', 'POST']) {
      const raw = await rawRequest(
        s.proxy.url,
        `${method} /docs/a HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}`,
      );
      expect(statusOf(raw), method).toBe(200);
    }
    expect(s.upstream.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /api/a',
      'DELETE /api/a',
      'OPTIONS /api/a',
      'POST /api/a',
    ]);
    for (const r of s.upstream.requests) {
      // Framed either way, never both: chunked, or (when the whole body had arrived before the
      // request went out) its exact length.
      const te = r.headers['transfer-encoding'];
      const cl = r.headers['content-length'];
      expect(
        te === 'chunked' ? cl === undefined : te === undefined && cl === String(smuggled.length),
        `${r.method} ${te} ${cl}`,
      ).toBe(true);
      expect(r.body, r.method).toBe(smuggled);
    }
  });

  it('Connection naming Content-Length does not strip the framing of a streamed body (no smuggled second request)', async () => {
    const s = await setup();
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
    const body = smuggled + 'x'.repeat(70 * 1024); // over the 64 KiB replay buffer: streamed
    for (const method of ['GET', 'DELETE']) {
      const raw = await rawRequest(
        s.proxy.url,
        `${method} /docs/a HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nContent-Length: ${body.length}\r\nConnection: close, content-length\r\n\r\n${body}`,
      );
      expect(statusOf(raw), method).toBe(200);
    }
    expect(s.upstream.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /api/a', 'DELETE /api/a']);
    for (const r of s.upstream.requests) expect(r.body, r.method).toBe(body);
  });

  it('oversized request headers are refused with 431', async () => {
    const s = await setup();
    const raw = await rawRequest(
      s.proxy.url,
      `GET /docs/a HTTP/1.1\r\nHost: ${s.host}\r\nAuthorization: Bearer ${s.user}\r\nX-Filler: ${'a'.repeat(20 * 1024)}\r\n\r\n`,
    );
    expect(statusOf(raw)).toBe(431);
    expectNothingLeaked(s, raw);
  });
});

describe('request hygiene: credentials never forwarded', () => {
  it('Proxy-Authorization is stripped before the upstream', async () => {
    const s = await setup();
    const res = await request(`${s.proxy.url}/docs/a`, {
      headers: { authorization: `Bearer ${s.user}`, 'proxy-authorization': 'Basic c2VjcmV0OnNlY3JldA==' },
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const seen = s.upstream.requests[0]!;
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.rawHeaders.join('\n')).not.toContain('c2VjcmV0OnNlY3JldA==');
  });

  it('headers listed in stripHeaders (global and per route) are stripped', async () => {
    const s = await setup({ stripHeaders: ['X-User-Token'] }, { stripHeaders: ['x-id-token'] });
    const res = await request(`${s.proxy.url}/docs/a`, {
      headers: {
        authorization: `Bearer ${s.user}`,
        'x-user-token': s.user,
        'x-id-token': s.user,
        'x-kept': 'yes',
      },
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const seen = s.upstream.requests[0]!;
    expect(seen.headers['x-user-token']).toBeUndefined();
    expect(seen.headers['x-id-token']).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('yes');
    expect(seen.rawHeaders.join('\n')).not.toContain(s.user);
  });

  it('cookies named in stripCookies are never forwarded; other cookies are', async () => {
    const s = await setup({ stripCookies: ['session'] }, { stripCookies: ['__Host-id'] });
    const res = await request(`${s.proxy.url}/docs/a`, {
      headers: {
        authorization: `Bearer ${s.user}`,
        cookie: `theme=dark; session=${s.user}; __Host-id=abc; lang=en`,
      },
    });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    const seen = s.upstream.requests[0]!;
    expect(seen.headers.cookie).toBe('theme=dark; lang=en');
    expect(seen.rawHeaders.join('\n')).not.toContain(s.user);
  });

  it('a cookie header holding only stripped cookies is removed entirely', async () => {
    const s = await setup({ stripCookies: ['session'] });
    const res = await request(`${s.proxy.url}/docs/a`, {
      headers: { authorization: `Bearer ${s.user}`, cookie: `session=${s.user}` },
    });
    await res.body.text();
    expect(s.upstream.requests[0]!.headers.cookie).toBeUndefined();
  });

  it('stripHeaders rejects a name that is not an HTTP header name, with its path', () => {
    expect(() =>
      resolveConfig({
        authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'x', clientAuth: 'none' },
        stripHeaders: ['bad header'],
        routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: 'http://127.0.0.1:1', stripCookies: ['a;b'] }],
      }),
    ).toThrow(
      /stripHeaders\[0\]: must be an HTTP header name[\s\S]*routes\[0\]\.stripCookies\[0\]: must be a cookie name/,
    );
  });
});

describe('request hygiene: listener', () => {
  it('the agent listener binds to loopback by default', async () => {
    const config = resolveConfig({
      authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: CLIENT_ID, clientAuth: 'none' },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: 'http://127.0.0.1:1' }],
    });
    expect(config.listen).toBe('127.0.0.1:8080');
    expect(config.admin).toBe('127.0.0.1:9090');
    // The same default host, on a free port: what start() binds when nothing overrides it.
    const proxy = createProxy(
      { ...config, listen: config.listen.replace(/:\d+$/, ':0'), admin: config.admin.replace(/:\d+$/, ':0') },
      { logger: createLogger({ level: 'silent', destination: createLogSink() }) },
    );
    closers.push(() => proxy.close());
    await proxy.start();
    const address = proxy.agentServer.address();
    expect(typeof address === 'object' && address?.address).toBe('127.0.0.1');
  });
});
