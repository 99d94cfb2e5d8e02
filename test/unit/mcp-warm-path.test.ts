import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { describeSubject } from '../../src/auth/token-service.js';
import { resolveConfig } from '../../src/config/load.js';
import { decide } from '../../src/mcp/decide.js';
import { McpPolicies } from '../../src/mcp/policies.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { compileRoute } from '../../src/routing/route-table.js';
import { useClosers } from '../helpers/closers.js';
import { startInHandlerPipeline } from '../helpers/in-handler-pipeline.js';
import { startUpstream } from '../helpers/start-upstream.js';

/** A JWT-shaped token with the given payload (decoded, never verified, by the policy). */
function fakeJwt(payload: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none' })}.${b64(payload)}.sig`;
}

const MCP_ROUTE = {
  name: 'tools',
  match: { pathPrefix: '/mcp' },
  scopes: ['mcp:tools:read', 'mcp:tools:write'],
  mcp: { toolScopes: { delete_file: ['files:delete'] }, filterToolsList: true },
};

/**
 * The MCP warm path (docs/design.md "Request pipeline"): on a warm cache an MCP call costs what a plain POST costs, so it takes
 * the same synchronous cache path once its body is in, and the per-route and per-user work of the
 * policy is done once, not per request.
 */
describe('MCP warm path', () => {
  const closers = useClosers();

  const proxy = (upstreamUrl: string) =>
    startInHandlerPipeline(
      [
        { name: 'plain', match: { pathPrefix: '/plain' }, upstream: upstreamUrl, scopes: ['a'] },
        { ...MCP_ROUTE, upstream: upstreamUrl },
      ],
      closers,
    );

  it('serves a warm tools/call from the cache without the waiting path, with the least scope', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const p = await proxy(upstream.url);
    const token = fakeJwt({ sub: 'u', scope: 'mcp:tools:read mcp:tools:write' });
    const call = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'read_file', arguments: {} },
    });
    for (let i = 0; i < 3; i++) {
      const res = await request(`${p.url}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: call,
      });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      expect(upstream.requests.at(-1)?.headers.authorization).toBe('Bearer delegated-1');
      expect(upstream.requests.at(-1)?.body).toBe(call);
    }
    expect(p.exchanged).toEqual([['mcp:tools:write']]);
    // Only the first call (the miss) waited for an exchange; the two hits took the cache path.
    expect(p.obtains()).toBe(1);
  });

  it('dispatches a chunked plain POST without waiting (it streams), a small sized one after its body', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const p = await proxy(upstream.url);
    const headers = { authorization: 'Bearer user-token-1', 'content-type': 'application/json' };
    const warm = await request(`${p.url}/plain/warm`, { headers });
    await warm.body.dump();
    // A stream without a length: sent chunked.
    const chunked = await request(`${p.url}/plain/chunked`, {
      method: 'POST',
      headers,
      body: Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]),
    });
    expect(chunked.statusCode).toBe(200);
    await chunked.body.dump();
    const sized = await request(`${p.url}/plain/sized`, { method: 'POST', headers, body: '{"a":1}' });
    expect(sized.statusCode).toBe(200);
    await sized.body.dump();
    expect(upstream.requests.map((r) => [r.url, r.body])).toEqual([
      ['/plain/warm', ''],
      ['/plain/chunked', '{"a":1}'],
      ['/plain/sized', '{"a":1}'],
    ]);
    // The miss waited; the warm chunked body streams from inside the handler; the sized one is read first (replay).
    expect(p.dispatchedInHandler).toEqual([false, true, false]);
  });
});

describe('McpPolicies', () => {
  const metrics = () => createMetrics({ registry: new Registry(), version: 'test', defaultMetrics: false });
  const routeOf = () => {
    const config = resolveConfig({
      authorizationServer: { tokenEndpoint: 'http://as.test/token', clientId: 'x', clientAuth: 'none' },
      routes: [{ ...MCP_ROUTE, upstream: 'http://mcp.test' }],
    });
    return compileRoute(config.routes[0]!);
  };

  it('compiles a route’s policy once, and again for a reloaded route', () => {
    const policies = new McpPolicies(metrics());
    const route = routeOf();
    const policy = policies.policyFor(route, route.mcp!);
    expect(policies.policyFor(route, route.mcp!)).toBe(policy);
    const reloaded = routeOf();
    expect(policies.policyFor(reloaded, reloaded.mcp!)).not.toBe(policy);
  });

  it('gives every call of a tool the same scopes array (so the token cache key memo can hit)', () => {
    const route = routeOf();
    const policy = new McpPolicies(metrics()).policyFor(route, route.mcp!);
    const call = (name: string) =>
      decide(policy, { kind: 'request', id: 1, method: 'tools/call', params: { name } }).requiredScopes;
    expect(call('read_file')).toEqual(['mcp:tools:write']);
    expect(call('read_file')).toBe(call('other_tool'));
    expect(call('delete_file')).toEqual(['files:delete', 'mcp:tools:write']);
    expect(call('delete_file')).toBe(call('delete_file'));
    expect(() => (call('read_file') as string[]).push('x')).toThrow();
  });

  it('decodes a user’s grants once per token, bounded', () => {
    const policies = new McpPolicies(metrics(), 2);
    const a = describeSubject(fakeJwt({ sub: 'a', scope: 'mcp:tools:read' }));
    const grants = policies.grantsFor(a);
    expect(grants).toEqual(new Set(['mcp:tools:read']));
    expect(policies.grantsFor(a)).toBe(grants);
    expect(policies.grantsFor(describeSubject('opaque'))).toBeUndefined();
    policies.grantsFor(describeSubject(fakeJwt({ sub: 'b', scope: 'x' })));
    policies.grantsFor(describeSubject(fakeJwt({ sub: 'c', scope: 'y' })));
    // Evicted (bound 2): decoded again, an equal but new set.
    const again = policies.grantsFor(a);
    expect(again).toEqual(grants);
    expect(again).not.toBe(grants);
  });
});
