import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkMcpRequest, McpRequestError } from '../../src/guard/index.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';

const closers = useClosers();

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
};
const call = { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: {}, _meta: META } };
const good = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo' };

function refusal(headers: Record<string, string> | Headers, body: unknown): McpRequestError {
  try {
    checkMcpRequest(headers, body);
  } catch (err) {
    expect(err).toBeInstanceOf(McpRequestError);
    return err as McpRequestError;
  }
  throw new Error('not refused');
}

describe('guard: checkMcpRequest (2026-07-28 requests)', () => {
  it('passes agreeing headers (Node records and Fetch Headers) and 2025-era messages', () => {
    expect(checkMcpRequest(good, call)).toEqual({ modern: true });
    expect(checkMcpRequest(new Headers(good), call)).toEqual({ modern: true });
    expect(checkMcpRequest({}, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })).toEqual({
      modern: false,
    });
  });

  it('refuses a header/body disagreement with 400 and a -32020 JSON-RPC error for the request id', () => {
    const err = refusal({ ...good, 'mcp-name': 'delete_file' }, call);
    expect(err.status).toBe(400);
    expect(err.body).toMatchObject({ jsonrpc: '2.0', id: 4, error: { code: -32020, data: { header: 'Mcp-Name' } } });
    expect(refusal({ ...good, 'mcp-method': 'tools/list' }, call).header).toBe('Mcp-Method');
    expect(refusal({ 'mcp-method': 'tools/call', 'mcp-name': 'echo' }, call).header).toBe('MCP-Protocol-Version');
  });

  it('refuses a modern request without the stateless envelope, and modern messages in a batch', () => {
    const bare = {
      ...call,
      params: { name: 'echo', _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } },
    };
    expect(refusal(good, bare).code).toBe(-32602);
    expect(refusal({}, [call, call]).code).toBe(-32600);
    expect(refusal({}, 'x').code).toBe(-32600);
  });

  it('accepts every request a real SDK v2 client sends, and the server still answers', async () => {
    const problems: unknown[] = [];
    const seen: string[] = [];
    const mcp = createMcpHandler(
      () => {
        const server = new McpServer({ name: 's', version: '1' });
        server.registerTool('echo', { inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
          content: [{ type: 'text', text }],
        }));
        return server;
      },
      { legacy: 'reject' },
    );
    const handle = toNodeHandler(mcp);
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        try {
          checkMcpRequest(req.headers, body);
          seen.push(String(req.headers['mcp-method']));
        } catch (err) {
          problems.push(err);
        }
        handle(req as IncomingMessage & { method: string; url: string }, res, body).catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      await mcp.close();
      await closeServer(server);
    });
    const client = new Client({ name: 'c', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)),
    );
    closers.push(() => client.close());
    await client.callTool({ name: 'echo', arguments: { text: 'x' } });
    expect(problems).toEqual([]);
    expect(seen).toEqual(expect.arrayContaining(['server/discover', 'tools/call']));
  });
});
