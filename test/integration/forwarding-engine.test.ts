import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { rawRequest, statusOf, waitFor } from '../helpers/raw-http.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';

const closers = useClosers();

let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

interface Upstream {
  url: string;
  /** Connections the upstream accepted, and how many are open now. */
  connections: Socket[];
  open(): number;
}

async function upstreamWith(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const server = createServer(handler);
  const connections: Socket[] = [];
  server.on('connection', (s: Socket) => connections.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => closeServer(server));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    open: () => connections.filter((s) => !s.destroyed).length,
  };
}

async function proxyTo(upstream: Upstream): Promise<{ proxy: TestProxy; auth: { authorization: string } }> {
  const proxy = await startProxy({
    as,
    config: {
      routes: [
        {
          name: 'r',
          match: { pathPrefix: '/r' },
          upstream: upstream.url,
          stripPrefix: true,
          scopes: ['documents:read'],
        },
      ],
    },
  });
  closers.push(() => proxy.close());
  return { proxy, auth: { authorization: `Bearer ${await as.userToken('alice', ['documents:read'])}` } };
}

describe('forwarding engine', () => {
  it('keeps duplicate response headers: each Set-Cookie arrives as its own header', async () => {
    const upstream = await upstreamWith((_req, res) => {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/', 'c=3; Path=/']);
      res.end('ok');
    });
    const { proxy, auth } = await proxyTo(upstream);
    const res = await request(`${proxy.url}/r/x`, { headers: auth });
    await res.body.text();
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/', 'c=3; Path=/']);
  });

  it('removes hop-by-hop headers both ways, including those named in Connection', async () => {
    let seen: IncomingMessage['headers'] = {};
    const upstream = await upstreamWith((req, res) => {
      seen = req.headers;
      res.writeHead(200, {
        connection: 'x-upstream-hop',
        'x-upstream-hop': 'secret',
        'keep-alive': 'timeout=1',
        'proxy-authenticate': 'Basic',
        'x-kept': 'yes',
      });
      res.end('ok');
    });
    const { proxy, auth } = await proxyTo(upstream);
    // Raw bytes: an HTTP client library would not send a Connection header naming other fields.
    const raw = await rawRequest(
      proxy.url,
      `GET /r/x HTTP/1.1\r\nHost: ${new URL(proxy.url).host}\r\nAuthorization: ${auth.authorization}\r\nConnection: close, x-client-hop\r\nX-Client-Hop: secret\r\nTE: trailers\r\nProxy-Authorization: Basic abc\r\nX-Other: kept\r\n\r\n`,
    );
    const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
    expect(statusOf(raw)).toBe(200);
    expect(seen['x-client-hop']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['x-other']).toBe('kept');
    expect(head).not.toContain('x-upstream-hop');
    expect(head).not.toContain('proxy-authenticate');
    expect(head).not.toContain('timeout=1');
    expect(head).toContain('x-kept: yes');
  });

  it('replaces X-Forwarded-* and Forwarded instead of appending to what the client sent', async () => {
    let seen: IncomingMessage['headers'] = {};
    const upstream = await upstreamWith((req, res) => {
      seen = req.headers;
      res.end('ok');
    });
    const { proxy, auth } = await proxyTo(upstream);
    const res = await request(`${proxy.url}/r/x`, {
      headers: {
        ...auth,
        'x-forwarded-for': '10.6.6.6',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        forwarded: 'for=10.6.6.6',
      },
    });
    await res.body.text();
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe(new URL(proxy.url).host);
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen.forwarded).toBeUndefined();
    expect(seen.host).toBe(new URL(upstream.url).host);
  });

  it('keeps upstream connections alive across requests', async () => {
    const upstream = await upstreamWith((_req, res) => res.end('ok'));
    const { proxy, auth } = await proxyTo(upstream);
    for (let i = 0; i < 20; i++) {
      const res = await request(`${proxy.url}/r/x`, { headers: auth });
      expect(await res.body.text()).toBe('ok');
    }
    expect(upstream.connections).toHaveLength(1);
  });

  it('a client leaving mid-stream cuts the upstream response', async () => {
    const upstream = await upstreamWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      // Never ends on its own.
    });
    const { proxy, auth } = await proxyTo(upstream);
    const controller = new AbortController();
    const res = await request(`${proxy.url}/r/events`, { headers: auth, signal: controller.signal });
    for await (const chunk of res.body) {
      expect(String(chunk)).toContain('first');
      break;
    }
    controller.abort();
    await waitFor(() => upstream.open() === 0, 5_000, 'upstream connection closed');
  });

  it('streams a large upload without buffering it and with its length', async () => {
    let received = 0;
    let length: string | undefined;
    const upstream = await upstreamWith((req, res) => {
      length = req.headers['content-length'];
      req.on('data', (c: Buffer) => {
        received += c.length;
      });
      req.on('end', () => res.end(String(received)));
    });
    const { proxy, auth } = await proxyTo(upstream);
    const size = 8 * 1024 * 1024;
    const res = await request(`${proxy.url}/r/upload`, {
      method: 'PUT',
      headers: { ...auth, 'content-length': String(size) },
      body: Buffer.alloc(size, 1),
    });
    expect(await res.body.text()).toBe(String(size));
    expect(length).toBe(String(size));
  });

  it('joins the upstream path and collapses runs of slashes in the path (never an authority upstream), query untouched', async () => {
    let seen = '';
    const upstream = await upstreamWith((req, res) => {
      seen = req.url ?? '';
      res.end('ok');
    });
    const { proxy, auth } = await proxyTo(upstream);
    const res = await request(`${proxy.url}/r//evil.example//x?a=//b`, { headers: auth });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(seen).toBe('/evil.example/x?a=//b');
  });
});
