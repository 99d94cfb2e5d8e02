import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { createFilesServer, createMcpHttpHandler } from '../../examples/mcp-server/server.js';
import { createGuard } from '../../src/guard/index.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { manualTime } from '../helpers/manual-time.js';
import { waitFor } from '../helpers/raw-http.js';
import { startAs } from '../helpers/start-as.js';
import { mcpRoute } from '../helpers/start-mcp-proxy.js';
import { startProxy } from '../helpers/start-proxy.js';

const closers = useClosers();
const AUDIENCE = 'https://mcp.internal';
const READ = 'mcp:tools:read';
const WRITE = 'mcp:tools:write';

describe('the 2025-11-25 GET stream with the official SDK 1.x client', () => {
  it('is ended cleanly at its lifetime; the client re-opens it by itself and notifications keep arriving', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const guard = createGuard({ issuer: as.issuer, audience: AUDIENCE, jwksUri: as.jwksUri });
    const files = new Map([['notes.txt', 'hello']]);
    const methods: string[] = [];
    const handle = createMcpHttpHandler({
      guard,
      enableJsonResponse: false,
      createMcpServer: () => {
        const server = createFilesServer(guard, files);
        server.registerTool('announce', { description: 'sends tools/list_changed' }, async () => {
          server.sendToolListChanged();
          return { content: [{ type: 'text', text: 'sent' }] };
        });
        return server;
      },
    });
    const upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        Object.assign(req, { rawBody: Buffer.concat(chunks) });
        methods.push(req.method ?? '');
        handle(req, res).catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    closers.push(() => closeServer(upstream));
    const time = manualTime();
    const proxy = await startProxy({
      as,
      clock: time,
      deps: { streamTimer: time },
      config: {
        routes: [
          mcpRoute(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, {
            mcp: { toolScopes: { announce: [] }, maxStreamSeconds: 30 },
          }),
        ],
      },
    });
    closers.push(() => proxy.close());

    const user = await as.userToken('alice', [READ, WRITE]);
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${user}` } },
      reconnectionOptions: {
        initialReconnectionDelay: 10,
        maxReconnectionDelay: 50,
        reconnectionDelayGrowFactor: 1,
        maxRetries: 3,
      },
    });
    const errors: unknown[] = [];
    let listChanged = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged++;
    });
    await client.connect(transport);
    closers.push(() => client.close());
    client.onerror = (err) => errors.push(err);

    const gets = () => methods.filter((m) => m === 'GET').length;
    await waitFor(() => gets() === 1 && proxy.proxy.streams.size === 1, 5_000, 'GET stream open');
    expect(time.pending).toEqual([30_000]);
    await client.callTool({ name: 'announce', arguments: {} });
    await waitFor(() => listChanged === 1, 5_000, 'notification on the first stream');

    time.advance(30_000);
    // The SDK treats a clean end of the GET stream as the server's wish to reconnect (no error).
    await waitFor(() => gets() === 2 && proxy.proxy.streams.size === 1, 5_000, 'GET stream re-opened');
    expect(time.pending).toEqual([30_000]);
    await client.callTool({ name: 'announce', arguments: {} });
    await waitFor(() => listChanged === 2, 5_000, 'notification on the re-opened stream');
    expect(errors).toEqual([]);
    const closed = await proxy.registry.getSingleMetricAsString('delegate_proxy_streams_closed_total');
    expect(closed).toContain('{route="tools",kind="sse",reason="max_lifetime"} 1');
  });
});
