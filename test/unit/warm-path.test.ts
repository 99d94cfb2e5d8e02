import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenService } from '../../src/auth/token-service.js';
import { resolveConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { createForwarder, type Forwarder } from '../../src/proxy/forwarder.js';
import { createHandler } from '../../src/proxy/handler.js';
import { RouteTable } from '../../src/routing/route-table.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { startUpstream } from '../helpers/start-upstream.js';

/**
 * Issue 11 item 5 (docs/design.md "Request pipeline", warm path): on a warm cache the handler
 * reaches the upstream dispatch within its own call, with nothing awaited before it; a miss waits
 * for the one exchange.
 */
describe('warm path', () => {
  const closers = useClosers();

  it('dispatches a cache hit synchronously, a miss after the exchange', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const config = resolveConfig({
      authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'x', clientAuth: 'none' },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: upstream.url, scopes: ['a'] }],
    });
    let exchanges = 0;
    // The authorization server is not what is measured here: a client that answers at once.
    const client: TokenExchangeClient = {
      exchange: async () => {
        exchanges++;
        return { accessToken: `delegated-${exchanges}`, issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token', tokenType: 'Bearer', expiresIn: 300, scopes: ['a'] };
      },
    } as TokenExchangeClient;
    const metrics = createMetrics({ registry: new Registry(), version: 'test', cacheEntries: () => 0, defaultMetrics: false });
    const tokens = new TokenService({
      client,
      cache: { refreshAheadSeconds: 30, maxTtlSeconds: 3600, maxEntries: 100, clockSkewSeconds: 5 },
      subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      clock: systemClock,
      metrics,
    });
    const real = createForwarder({ connections: 4, keepAliveTimeoutMs: 1000 });
    closers.push(() => real.close());
    let inHandler = false;
    const dispatchedInHandler: boolean[] = [];
    const forwarder: Forwarder = {
      forward: (res, target) => {
        dispatchedInHandler.push(inHandler);
        return real.forward(res, target);
      },
      dispatch: (res, target, settled) => {
        dispatchedInHandler.push(inHandler);
        real.dispatch(res, target, settled);
      },
      close: () => real.close(),
    };
    const handler = createHandler({
      runtime: () => ({ routes: new RouteTable(config.routes), subjectHeader: 'authorization', config }),
      tokens,
      forwarder,
      metrics,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
    });
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      inHandler = true;
      try {
        handler(req, res);
      } finally {
        inHandler = false;
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => closeServer(server));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/r/a`;
    for (let i = 0; i < 3; i++) {
      const res = await request(url, { headers: { authorization: 'Bearer user-token-1' } });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      expect(upstream.requests.at(-1)?.headers.authorization).toBe('Bearer delegated-1');
    }
    expect(exchanges).toBe(1);
    // The first request waited for its exchange; the two hits were dispatched inside the handler call.
    expect(dispatchedInHandler).toEqual([false, true, true]);
  });
});
