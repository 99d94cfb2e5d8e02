import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createMcpHttpHandler } from '../../examples/mcp-server/server.js';
import { createGuard } from '../../src/guard/index.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { useFileAs } from '../helpers/file-as.js';
import type { TestAuthorizationServer } from '../helpers/start-as.js';
import { mcpRoute, startMcpProxy } from '../helpers/start-mcp-proxy.js';
import { type McpV2Options, type McpV2Upstream, type SeenV2Request, startMcpV2 } from '../helpers/start-mcp-v2.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';

/**
 * MCP 2026-07-28 through an `mcp:` route: the official SDK v2 client (pinned to the revision, and
 * in `auto` mode) against SDK v2 servers (modern-only, and both eras on one endpoint), with the
 * real oidc-provider AS doing the exchanges.
 */
const AUDIENCE = 'https://mcp.internal';
const READ = 'mcp:tools:read';
const WRITE = 'mcp:tools:write';
const DELETE = 'files:delete';

const closers = useClosers();

const sharedAs = useFileAs({ clearExchanges: true });

interface Setup {
  readonly as: TestAuthorizationServer;
  readonly upstream: McpV2Upstream;
  readonly proxy: TestProxy;
  connect(user: string, mode?: 'pin' | 'auto'): Promise<Client>;
}

async function setup(
  options: { server?: McpV2Options; mcp?: Record<string, unknown>; scopes?: string[] } = {},
): Promise<Setup> {
  const as = sharedAs();
  const upstream = await startMcpV2(options.server ?? { legacy: 'reject' });
  closers.push(() => upstream.close());
  const proxy = await startMcpProxy(closers, as, upstream.url, options);
  return {
    as,
    upstream,
    proxy,
    async connect(user, mode = 'pin') {
      const client = new Client(
        { name: 'test-agent', version: '1.0.0' },
        { versionNegotiation: { mode: mode === 'pin' ? { pin: '2026-07-28' } : 'auto' } },
      );
      const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${user}` } },
      });
      await client.connect(transport);
      closers.push(() => client.close());
      return client;
    },
  };
}

function tokenOf(seen: SeenV2Request): string {
  return String(seen.headers.authorization ?? '').replace(/^Bearer /, '');
}

function rpcOf(seen: SeenV2Request): { method?: string; params?: { name?: string; _meta?: Record<string, unknown> } } {
  return seen.body === '' ? {} : (JSON.parse(seen.body) as { method?: string });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe.each([
  ['a modern-only server', { legacy: 'reject' } as McpV2Options],
  ['a dual-era server', { legacy: 'stateless' } as McpV2Options],
])('SDK v2 client (2026-07-28) through the proxy to %s', (_name, server) => {
  it.each(['pin', 'auto'] as const)('connects, lists and calls (%s mode), with delegated tokens only', async (mode) => {
    const { as, upstream, connect } = await setup({ server });
    const user = await as.userToken('alice', [READ, WRITE]);
    const client = await connect(user, mode);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['delete_file', 'echo', 'read_file']);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    expect(result.content).toEqual([{ type: 'text', text: 'hi' }]);

    const posts = upstream.seen.filter((s) => s.method === 'POST');
    const methods = posts.map((s) => rpcOf(s).method);
    expect(methods).toEqual(expect.arrayContaining(['server/discover', 'tools/list', 'tools/call']));
    expect(methods).not.toContain('initialize');
    for (const seen of posts) {
      // Every message the server got is a modern one, its mirrored headers intact.
      expect(rpcOf(seen).params?._meta?.['io.modelcontextprotocol/protocolVersion']).toBe('2026-07-28');
      expect(seen.headers['mcp-method']).toBe(rpcOf(seen).method);
      const token = tokenOf(seen);
      expect(token).not.toBe(user);
      expect(seen.body).not.toContain(user);
      const claims = decodeJwt(token);
      expect(claims.sub).toBe('alice');
      expect(claims.aud).toBe(AUDIENCE);
    }
    const scopeFor = (m: string) => String(decodeJwt(tokenOf(posts.find((s) => rpcOf(s).method === m)!)).scope);
    expect(scopeFor('server/discover')).toBe(READ);
    expect(scopeFor('tools/list')).toBe(READ);
    expect(scopeFor('tools/call')).toBe(WRITE);
  });

  it('a reader can discover and list but not call; the call never reaches the server', async () => {
    const { as, upstream, connect } = await setup({ server });
    const user = await as.userToken('bob', [READ]);
    const client = await connect(user);
    expect((await client.listTools()).tools).toHaveLength(3);
    const err = await failure(client.callTool({ name: 'echo', arguments: { text: 'hi' } }));
    // The SDK reads the 403's challenge: the scopes the call needs.
    expect(err.message).toBe(`Insufficient scope: required "${WRITE}"`);
    expect(upstream.rpcMethods()).not.toContain('tools/call');
    expect(as.exchanges.filter((e) => e.params.scope === WRITE).map((e) => e.outcome)).toEqual(['invalid_scope']);
  });

  it('per-tool scopes: delete_file asks for files:delete, other tools never carry it', async () => {
    const { as, upstream, connect } = await setup({ server });
    const writer = await as.userToken('carol', [READ, WRITE]);
    const client = await connect(writer);
    await client.callTool({ name: 'read_file', arguments: { path: 'a' } });
    const err = await failure(client.callTool({ name: 'delete_file', arguments: { path: 'a' } }));
    expect(err.message).toBe(`Insufficient scope: required "${DELETE} ${WRITE}"`);
    expect(upstream.seen.map((s) => rpcOf(s).params?.name)).not.toContain('delete_file');

    const admin = await as.userToken('dave', [READ, WRITE, DELETE]);
    const adminClient = await connect(admin);
    const deleted = await adminClient.callTool({ name: 'delete_file', arguments: { path: 'a' } });
    expect(deleted.content).toEqual([{ type: 'text', text: 'deleted a' }]);
    const calls = upstream.seen.filter((s) => rpcOf(s).method === 'tools/call');
    expect(calls.map((s) => [rpcOf(s).params?.name, decodeJwt(tokenOf(s)).scope])).toEqual([
      ['read_file', WRITE],
      ['delete_file', `${DELETE} ${WRITE}`],
    ]);
  });
});

describe('2025-era clients on a dual-era route (SDK 1.x)', () => {
  it('initialize, list and call still work, on the same route the modern client uses', async () => {
    const { as, upstream, proxy, connect } = await setup({ server: { legacy: 'stateless' } });
    const user = await as.userToken('alice', [READ, WRITE]);
    const modern = await connect(user);
    await modern.callTool({ name: 'echo', arguments: { text: 'modern' } });

    const legacy = new ClientV1({ name: 'old-agent', version: '1.0.0' });
    await legacy.connect(
      new TransportV1(new URL(`${proxy.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${user}` } } }),
    );
    closers.push(() => legacy.close());
    const result = await legacy.callTool({ name: 'echo', arguments: { text: 'legacy' } });
    expect(result.content).toEqual([{ type: 'text', text: 'legacy' }]);
    await legacy.setLoggingLevel('info').catch(() => undefined);
    expect(upstream.rpcMethods()).toEqual(expect.arrayContaining(['server/discover', 'initialize', 'tools/call']));
    expect(upstream.rpcMethods()).toContain('logging/setLevel');
  });
});

describe('SDK v2 client in auto mode, 2025-only server (SDK 1.x example server)', () => {
  it('falls back to initialize through the proxy and calls tools', async () => {
    const guard = createGuard({ issuer: sharedAs().issuer, audience: AUDIENCE, jwksUri: sharedAs().jwksUri });
    const handle = createMcpHttpHandler({ guard });
    const server = createServer((req, res) => {
      handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => closeServer(server));
    const proxy = await startProxy({
      as: sharedAs(),
      config: {
        routes: [mcpRoute(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)],
      },
    });
    closers.push(() => proxy.close());
    const user = await sharedAs().userToken('alice', [READ, WRITE]);
    const client = new Client({ name: 'test-agent', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${user}` } },
      }),
    );
    closers.push(() => client.close());
    const result = await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } });
    expect(result.content).toEqual([{ type: 'text', text: 'hello from the example server' }]);
  });
});
