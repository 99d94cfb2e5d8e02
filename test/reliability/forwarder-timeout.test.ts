import { Readable } from 'node:stream';
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

const TIMEOUT_MS = 1_000;
const CONCURRENT = 200;

/**
 * A route's timeoutMs is the longest a request waits for response headers, time queued
 * for one of the upstream's pooled connections included.
 */
describe('route timeout covers the wait for an upstream connection', () => {
  it(`${CONCURRENT} concurrent requests to an upstream that never answers, 4 connections: every one 504 within about timeoutMs`, async () => {
    const stalled = await countingUpstream(() => {
      // Reads the request, never answers.
    });
    closers.push(() => stalled.close());
    const healthy = await countingUpstream((_req, res) => res.end('ok'));
    closers.push(() => healthy.close());
    const proxy = await startProxy({
      as,
      config: {
        upstreams: { connections: 4 },
        routes: [
          {
            name: 'stalled',
            match: { pathPrefix: '/stalled' },
            upstream: stalled.url,
            scopes: ['documents:read'],
            timeoutMs: TIMEOUT_MS,
          },
          {
            name: 'healthy',
            match: { pathPrefix: '/healthy' },
            upstream: healthy.url,
            scopes: ['documents:read'],
            timeoutMs: TIMEOUT_MS,
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const headers = { authorization: `Bearer ${await as.userToken('alice', ['documents:read'])}` };
    // Warm the token (both routes share it): the measured time is the forward step's.
    await (await request(`${proxy.url}/healthy/warm`, { headers })).body.text();

    const timed = async (path: string) => {
      const started = performance.now();
      const res = await request(`${proxy.url}${path}`, { headers, headersTimeout: 30_000 });
      const body = await res.body.text();
      return { status: res.statusCode, body, ms: performance.now() - started };
    };
    const stalledCalls = Array.from({ length: CONCURRENT }, (_, i) => timed(`/stalled/${i}`));
    const other = await timed('/healthy/during');
    const results = await Promise.all(stalledCalls);

    expect(results.map((r) => r.status)).toEqual(Array(CONCURRENT).fill(504));
    expect(JSON.parse(results[0]!.body)).toMatchObject({ error: 'gateway_timeout' });
    const slowest = Math.max(...results.map((r) => r.ms));
    expect(slowest).toBeLessThan(2 * TIMEOUT_MS);
    // Another route (another upstream, another pool) is not held up by the stalled one.
    expect(other.status).toBe(200);
    expect(other.ms).toBeLessThan(TIMEOUT_MS);
  });

  it('an upload that streams for longer than timeoutMs is not cut', async () => {
    const upstream = await countingUpstream((req, res) => {
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
      });
      req.on('end', () => res.end(String(size)));
    });
    closers.push(() => upstream.close());
    const proxy = await startProxy({
      as,
      config: {
        routes: [
          {
            name: 'up',
            match: { pathPrefix: '/up' },
            upstream: upstream.url,
            scopes: ['documents:read'],
            timeoutMs: 300,
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const headers = { authorization: `Bearer ${await as.userToken('alice', ['documents:read'])}` };
    // 10 chunks of 64 KiB, 100 ms apart: about 1 s of upload against a 300 ms timeout.
    async function* slowBody() {
      for (let i = 0; i < 10; i++) {
        yield Buffer.alloc(64 * 1024, i);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const res = await request(`${proxy.url}/up/file`, { method: 'PUT', headers, body: Readable.from(slowBody()) });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe(String(10 * 64 * 1024));
  });
});
