import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenService } from '../../src/auth/token-service.js';
import { resolveConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRouteMetrics } from '../../src/observability/route-metrics.js';
import { systemClock } from '../../src/pipeline/clock.js';
import type { Forwarder } from '../../src/proxy/forwarder.js';
import { createHandler } from '../../src/proxy/handler.js';
import { HostAllowList } from '../../src/routing/allowed-hosts.js';
import { RouteTable } from '../../src/routing/route-table.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { createLogSink } from '../helpers/log-sink.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startUpstream } from '../helpers/start-upstream.js';
import { manualTimer, secretFile, startApprovalReceiver, startStepUpProxy } from '../helpers/step-up-harness.js';

const closers = useClosers();

let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

describe('errors turned into responses in one place', () => {
  it('an unexpected exception is a 500 internal_error, logged with its stack, not a 502', async () => {
    const config = resolveConfig({
      authorizationServer: { tokenEndpoint: 'http://127.0.0.1:1/token', clientId: 'x', clientAuth: 'none' },
      routes: [{ name: 'r', match: { pathPrefix: '/r' }, upstream: 'http://127.0.0.1:1' }],
    });
    const logs = createLogSink();
    // The defect is planted in the one step a test cannot otherwise break: the forwarder.
    const forwarder: Forwarder = {
      dispatch: () => {
        throw new TypeError('planted defect');
      },
      close: async () => {},
    };
    const tokens = {
      describe: (token: string) => ({ token, hash: 'h', sub: undefined, expiresAt: undefined }),
      obtain: async () => ({
        token: { accessToken: 'delegated', scopes: [], expiresAt: Date.now() + 60_000, refreshAt: Date.now() + 30_000 },
        result: 'miss',
        key: 'k',
      }),
      cached: () => undefined,
    } as unknown as TokenService;
    const metrics = createMetrics({
      registry: new Registry(),
      version: 'test',
      cacheEntries: () => 0,
      defaultMetrics: false,
    });
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
        routeMetrics: createRouteMetrics(metrics),
        logger: createLogger({ level: 'debug', destination: logs }),
        clock: systemClock,
      },
      forwarder,
    );
    const server: Server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => closeServer(server));
    const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/r/a`, {
      headers: { authorization: 'Bearer user-token' },
    });
    expect(res.statusCode).toBe(500);
    expect(await res.body.json()).toEqual({
      error: 'internal_error',
      error_description: 'the proxy failed to handle the request',
    });
    const line = logs.lines().find((l) => l.msg === 'request failed');
    expect(line).toMatchObject({ level: 'error', code: 'internal_error', status: 500 });
    expect(String((line?.err as { stack?: string } | undefined)?.stack)).toContain('TypeError: planted defect');
    expect(logs.text()).not.toContain('user-token');
  });

  it('a body over the step-up read limit is 413 payload_too_large, before any approval or upstream call', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const receiver = await startApprovalReceiver();
    closers.push(() => receiver.close());
    const proxy = await startStepUpProxy({
      as,
      timer: manualTimer(),
      config: {
        stepUp: { approval: { webhookUrl: receiver.url, timeoutSeconds: 120, callbackSecretFile: secretFile() } },
        routes: [
          {
            name: 'billing',
            match: { pathPrefix: '/billing' },
            upstream: upstream.url,
            scopes: ['billing:read'],
            stepUp: { scopes: ['billing:write'], rules: [{ method: 'POST', pathPrefix: '/billing' }] },
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', ['billing:read', 'billing:write']);
    const res = await request(`${proxy.url}/billing/pay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user}`, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(2 * 1024 * 1024, 1),
    });
    expect(res.statusCode).toBe(413);
    expect(await res.body.json()).toMatchObject({ error: 'payload_too_large' });
    expect(receiver.events).toHaveLength(0);
    expect(upstream.requests).toHaveLength(0);
  });
});
