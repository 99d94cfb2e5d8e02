import type { Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { countingUpstream } from './forwarder-upstreams.js';

const closers = useClosers();

let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

async function setup(
  handler: Parameters<typeof countingUpstream>[0],
  configure?: (u: Awaited<ReturnType<typeof countingUpstream>>) => void,
) {
  const upstream = await countingUpstream(handler);
  configure?.(upstream);
  closers.push(() => upstream.close());
  const proxy = await startProxy({
    as,
    config: { routes: [{ name: 'r', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }] },
  });
  closers.push(() => proxy.close());
  const headers = { authorization: `Bearer ${await as.userToken('alice', ['documents:read'])}` };
  const send = async (method: string, path: string, body?: string) => {
    const res = await request(`${proxy.url}${path}`, {
      method: method as 'GET',
      headers,
      ...(body === undefined ? {} : { body }),
    });
    return { status: res.statusCode, text: await res.body.text() };
  };
  return { upstream, send };
}

/**
 * A kept-alive socket the upstream closes as a request goes out on it: the upstream closes every
 * connection when a second request arrives on it, without answering (alternately with FIN and RST).
 */
function closesReusedConnections() {
  const served = new WeakMap<Socket, number>();
  let kills = 0;
  return (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n > 1) {
      if (kills++ % 2 === 0) req.socket.destroy();
      else req.socket.resetAndDestroy();
      return;
    }
    res.end(`ok ${req.method}`);
  };
}

let closes = 0;
/** 0 and 1 ms in turn: with either, some requests go out on a connection the upstream is closing. */
const closeDelayMs = () => closes++ % 2;

/** An idempotent request whose reused upstream socket is reset before any response byte is retried once. */
describe('reset of a reused upstream connection', () => {
  it('an upstream that closes idle connections right after answering: 500 sequential GETs, zero 502s', async () => {
    // Every connection is closed moments after its response (0-1 ms): the next request races the close.
    const { upstream, send } = await setup((req, res) => {
      res.on('finish', () => setTimeout(() => req.socket.destroy(), closeDelayMs()));
      res.end('ok');
    });
    const statuses: number[] = [];
    for (let i = 0; i < 500; i++) statuses.push((await send('GET', `/r/${i}`)).status);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(upstream.arrivals.length).toBeGreaterThanOrEqual(500);
  });

  it('GETs on connections reset as the request goes out are retried once on a fresh connection', async () => {
    const { upstream, send } = await setup(closesReusedConnections());
    for (let i = 0; i < 100; i++) expect((await send('GET', `/g/${i}`)).status).toBe(200);
    // Each GET after the first met a reused connection that was closed, and was sent once more.
    expect(upstream.arrivals.length).toBe(199);
  });

  it('a POST in the same situation is not retried: 502, and the upstream saw it once', async () => {
    const { upstream, send } = await setup(closesReusedConnections());
    expect((await send('POST', '/p/1', 'first')).status).toBe(200);
    const second = await send('POST', '/p/2', 'second');
    expect(second.status).toBe(502);
    expect(upstream.arrivals).toEqual(['POST /p/1', 'POST /p/2']);
  });

  it('never twice: an upstream that resets every request gets a GET twice, then the agent gets 502', async () => {
    const { upstream, send } = await setup((req) => req.socket.resetAndDestroy());
    expect((await send('GET', '/x')).status).toBe(502);
    expect(upstream.arrivals).toEqual(['GET /x', 'GET /x']);
  });

  it('never after a response byte: an upstream that resets mid-headers is not retried', async () => {
    const { upstream, send } = await setup((req) => {
      req.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/pl');
      setTimeout(() => req.socket.resetAndDestroy(), 20);
    });
    expect((await send('GET', '/y')).status).toBe(502);
    expect(upstream.arrivals).toEqual(['GET /y']);
  });
});
