import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

async function setup(refuse: () => boolean): Promise<{ upstream: TestUpstream; proxy: TestProxy; before: number }> {
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    if (refuse()) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'text/plain' });
      res.end('refused by upstream');
      return;
    }
    res.end('ok');
  });
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as,
    config: {
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['documents:read'] }],
    },
  });
  closers.push(() => proxy.close());
  return { upstream, proxy, before: as.exchanges.length };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('upstream 401 on a delegated token', () => {
  it("a fresh token's 401 is passed through: no second exchange, no retry", async () => {
    const { upstream, proxy, before } = await setup(() => true);
    const res = await request(`${proxy.url}/r/a`, { headers: bearer(await as.userToken('alice', ['documents:read'])) });
    expect(res.statusCode).toBe(401);
    expect(await res.body.text()).toBe('refused by upstream');
    expect(upstream.requests).toHaveLength(1);
    expect(as.exchanges.length - before).toBe(1);
  });

  it('a cached token is retried only once: a second 401 is passed through', async () => {
    let refuse = false;
    const { upstream, proxy, before } = await setup(() => refuse);
    const user = await as.userToken('alice', ['documents:read']);
    await (await request(`${proxy.url}/r/a`, { headers: bearer(user) })).body.dump();
    refuse = true;
    const res = await request(`${proxy.url}/r/b`, { headers: bearer(user) });
    await res.body.dump();
    expect(res.statusCode).toBe(401);
    expect(upstream.requests).toHaveLength(3);
    expect(as.exchanges.length - before).toBe(2);
  });

  it('a streamed (non-replayable) body is not retried: the 401 is passed through', async () => {
    let refuse = false;
    const { upstream, proxy, before } = await setup(() => refuse);
    const user = await as.userToken('alice', ['documents:read']);
    await (await request(`${proxy.url}/r/a`, { headers: bearer(user) })).body.dump();
    refuse = true;
    const body = 'x'.repeat(100 * 1024); // over the 64 KiB replay buffer
    const res = await request(`${proxy.url}/r/upload`, { method: 'POST', headers: bearer(user), body });
    await res.body.dump();
    expect(res.statusCode).toBe(401);
    expect(upstream.requests).toHaveLength(2);
    expect(upstream.requests[1]!.body).toBe(body);
    expect(as.exchanges.length - before).toBe(1);
  });

  it('a reset of the refused 401 connection while the retry is out does not drop the retry (no hang)', async () => {
    let n = 0;
    const server = createServer((req, res) => {
      n++;
      if (n === 1) {
        res.end('ok');
        return;
      }
      if (n === 2) {
        // 401 with a body that never completes: the connection is reset once the retry is under way.
        res.writeHead(401, { 'content-length': '100' });
        res.write('partial');
        setTimeout(() => req.socket.resetAndDestroy(), 200);
        return;
      }
      setTimeout(() => res.end('second'), 500);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => closeServer(server));
    const proxy = await startProxy({
      as,
      config: {
        routes: [
          {
            name: 'r',
            match: { pathPrefix: '/r' },
            upstream: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            scopes: ['documents:read'],
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', ['documents:read']);
    await (await request(`${proxy.url}/r/a`, { headers: bearer(user) })).body.dump();
    const res = await request(`${proxy.url}/r/b`, { headers: bearer(user), headersTimeout: 5_000 });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('second');
    expect(n).toBe(3);
  });
});
