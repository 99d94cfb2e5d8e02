import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { TokenExchangeClient } from '../../src/auth/token-exchange.js';
import { TokenService } from '../../src/auth/token-service.js';
import { resolveConfig } from '../../src/config/load.js';
import { McpPolicies } from '../../src/mcp/policies.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouteMetrics } from '../../src/observability/route-metrics.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { createForwarder, type Forwarder } from '../../src/proxy/forwarder.js';
import { createHandler } from '../../src/proxy/handler.js';
import { HostAllowList } from '../../src/routing/allowed-hosts.js';
import { RouteTable } from '../../src/routing/route-table.js';
import { closeServer } from '../../src/server/listen.js';

export interface InHandlerPipeline {
  readonly url: string;
  /** The scopes of each exchange, in order (the delegated token of exchange N is `delegated-N`). */
  readonly exchanged: string[][];
  /** Calls of TokenService.obtain(), the waiting path (a promise per request). */
  obtains(): number;
  /** Per upstream dispatch: whether it happened inside the handler's own call (nothing awaited before it). */
  readonly dispatchedInHandler: boolean[];
}

/**
 * The request pipeline (createHandler) on a real HTTP server and a real forwarder, recording whether
 * each upstream dispatch happened inside the handler's own call (docs/design.md "warm path"). The
 * authorization server is not what these tests look at: a client that answers at once, with the
 * scopes it was asked for.
 */
export async function startInHandlerPipeline(
  routes: Record<string, unknown>[],
  closers: { push(close: () => Promise<void> | void): void },
): Promise<InHandlerPipeline> {
  const config = resolveConfig({
    authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'x', clientAuth: 'none' },
    routes,
  });
  const exchanged: string[][] = [];
  const client = {
    exchange: async (r: { scopes: readonly string[] }) => {
      exchanged.push([...r.scopes]);
      return {
        accessToken: `delegated-${exchanged.length}`,
        issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
        tokenType: 'Bearer',
        expiresIn: 300,
        scopes: [...r.scopes],
      };
    },
  } as unknown as TokenExchangeClient;
  const metrics = createMetrics({
    registry: new Registry(),
    version: 'test',
    cacheEntries: () => 0,
    defaultMetrics: false,
  });
  const routeMetrics = createRouteMetrics(metrics);
  const tokens = new TokenService({
    routeMetrics,
    client,
    cache: { refreshAheadSeconds: 30, maxTtlSeconds: 3600, maxEntries: 100, clockSkewSeconds: 5 },
    subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
    clock: systemClock,
    metrics,
  });
  let obtains = 0;
  const obtain = tokens.obtain.bind(tokens);
  tokens.obtain = (r) => {
    obtains++;
    return obtain(r);
  };
  const real = createForwarder({ connections: 4, keepAliveTimeoutMs: 1000 });
  closers.push(() => real.close());
  let inHandler = false;
  const dispatchedInHandler: boolean[] = [];
  const forwarder: Forwarder = {
    dispatch: (res, target, settled) => {
      dispatchedInHandler.push(inHandler);
      real.dispatch(res, target, settled);
    },
    close: () => real.close(),
  };
  const handler = createHandler(
    {
      runtime: () => ({
        routes: new RouteTable(config.routes),
        hosts: new HostAllowList([], []),
        subjectHeader: 'authorization',
        config,
      }),
      tokens,
      metrics,
      logger: pino({ level: 'silent' }),
      clock: systemClock,
      mcpPolicies: new McpPolicies(metrics),
      routeMetrics,
    },
    forwarder,
  );
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
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanged,
    obtains: () => obtains,
    dispatchedInHandler,
  };
}
