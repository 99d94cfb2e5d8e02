import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { closeServer } from '../../src/server/listen.js';

/** What the MCP server received over HTTP, before the SDK saw it. */
export interface SeenV2Request {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface McpV2Upstream {
  readonly url: string;
  readonly seen: SeenV2Request[];
  /** JSON-RPC methods of the POST bodies seen, in order. */
  rpcMethods(): string[];
  /** Publishes `notifications/tools/list_changed` to open `subscriptions/listen` streams. */
  toolsChanged(): void;
  close(): Promise<void>;
}

export interface McpV2Options {
  /** `reject`: a modern-only endpoint; `stateless` (default): both eras on one endpoint. */
  readonly legacy?: 'reject' | 'stateless';
  /** cacheHints of tools/list (default: the SDK's `ttlMs: 0, cacheScope: private`). */
  readonly toolsListCache?: { readonly ttlMs: number; readonly cacheScope: 'public' | 'private' };
  readonly responseMode?: 'auto' | 'sse' | 'json';
  /** Extra tools or handlers on each per-request server. */
  readonly extend?: (server: McpServer) => void;
}

/**
 * A real SDK v2 MCP server (`createMcpHandler` + `toNodeHandler`) on port 0 with the tools `echo`,
 * `read_file` and `delete_file`, recording each request as it arrived.
 */
export async function startMcpV2(options: McpV2Options = {}): Promise<McpV2Upstream> {
  const seen: SeenV2Request[] = [];
  const factory = () => {
    const server = new McpServer(
      { name: 'v2-upstream', version: '1.0.0' },
      options.toolsListCache === undefined
        ? { capabilities: { tools: { listChanged: true } } }
        : { capabilities: { tools: { listChanged: true } }, cacheHints: { 'tools/list': options.toolsListCache } },
    );
    server.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
      content: [{ type: 'text', text }],
    }));
    server.registerTool('read_file', { inputSchema: z.object({ path: z.string() }) }, async ({ path }) => ({
      content: [{ type: 'text', text: `contents of ${path}` }],
    }));
    server.registerTool('delete_file', { inputSchema: z.object({ path: z.string() }) }, async ({ path }) => ({
      content: [{ type: 'text', text: `deleted ${path}` }],
    }));
    options.extend?.(server);
    return server;
  };
  const mcp = createMcpHandler(factory, {
    ...(options.legacy === undefined ? {} : { legacy: options.legacy }),
    ...(options.responseMode === undefined ? {} : { responseMode: options.responseMode }),
    keepAliveMs: 0,
  });
  const handle = toNodeHandler(mcp);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', headers: req.headers, body });
      const parsed: unknown = body === '' ? undefined : JSON.parse(body);
      // The SDK's duck type wants `method` and `url` set (exactOptionalPropertyTypes): they always are on a server request.
      handle(req as IncomingMessage & { method: string; url: string }, res, parsed).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    rpcMethods: () =>
      seen.flatMap((s) => {
        if (s.body === '') return [];
        const parsed = JSON.parse(s.body) as { method?: string } | Array<{ method?: string }>;
        return (Array.isArray(parsed) ? parsed : [parsed]).flatMap((m) => (m.method === undefined ? [] : [m.method]));
      }),
    toolsChanged: () => mcp.notify.toolsChanged(),
    async close() {
      await mcp.close();
      await closeServer(server);
    },
  };
}
