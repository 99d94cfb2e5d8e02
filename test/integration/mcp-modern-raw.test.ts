import { acceptedContent, inputRequired } from '@modelcontextprotocol/server';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { useClosers } from '../helpers/closers.js';
import { useFileAs } from '../helpers/file-as.js';
import { postMcp } from '../helpers/mcp-post.js';
import { startMcpProxy } from '../helpers/start-mcp-proxy.js';
import { type McpV2Options, type McpV2Upstream, startMcpV2 } from '../helpers/start-mcp-v2.js';
import type { TestProxy } from '../helpers/start-proxy.js';

/**
 * Raw 2026-07-28 POSTs through an `mcp:` route to a real SDK v2 server: mirrored headers checked
 * before anything else, per-user list results made private, scope challenges.
 */
const READ = 'mcp:tools:read';
const WRITE = 'mcp:tools:write';
const RESOURCES = 'mcp:resources:read';
const VERSION = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': VERSION,
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

const closers = useClosers();
const sharedAs = useFileAs({ clearExchanges: true });

async function setup(
  options: { server?: McpV2Options; mcp?: Record<string, unknown>; scopes?: string[] } = {},
): Promise<{ upstream: McpV2Upstream; proxy: TestProxy; url: string }> {
  const upstream = await startMcpV2(options.server ?? { legacy: 'reject' });
  closers.push(() => upstream.close());
  const proxy = await startMcpProxy(closers, sharedAs(), upstream.url, options);
  return { upstream, proxy, url: `${proxy.url}/mcp` };
}

function call(name: string, args: Record<string, unknown> = {}, id = 1, meta: Record<string, unknown> = META) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: meta } };
}

function headersFor(method: string, name?: string): Record<string, string> {
  return {
    'mcp-protocol-version': VERSION,
    'mcp-method': method,
    ...(name === undefined ? {} : { 'mcp-name': name }),
  };
}

/** The JSON-RPC messages of a JSON or SSE answer. */
function messagesOf(text: string, contentType: unknown): Array<Record<string, unknown>> {
  if (String(contentType).startsWith('text/event-stream')) {
    return text
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => JSON.parse(l.slice(5)) as Record<string, unknown>);
  }
  return [JSON.parse(text) as Record<string, unknown>];
}

const b64 = (s: string) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;

describe('mirrored headers (2026-07-28 "Server Validation")', () => {
  it('a request whose headers agree passes, Mcp-Param-* forwarded untouched, Base64 names decoded', async () => {
    const { upstream, url } = await setup();
    const user = await sharedAs().userToken('alice', [READ, WRITE]);
    const plain = await postMcp(url, user, call('echo', { text: 'hi' }), {
      ...headersFor('tools/call', 'echo'),
      'mcp-param-region': '=?base64?dXMtd2VzdDE=?=',
    });
    expect(plain.status).toBe(200);
    expect(upstream.seen.at(-1)?.headers['mcp-param-region']).toBe('=?base64?dXMtd2VzdDE=?=');
    const encoded = await postMcp(url, user, call('echo', { text: 'hi' }, 2), headersFor('tools/call', b64('echo')));
    expect(encoded.status).toBe(200);
    expect(upstream.seen).toHaveLength(2);
  });

  const cases: Array<[string, unknown, Record<string, string>, string]> = [
    ['Mcp-Method names another method', call('echo'), headersFor('tools/list', 'echo'), 'Mcp-Method'],
    ['Mcp-Name names another tool', call('delete_file'), headersFor('tools/call', 'echo'), 'Mcp-Name'],
    ['Mcp-Name (Base64) names another tool', call('delete_file'), headersFor('tools/call', b64('echo')), 'Mcp-Name'],
    ['Mcp-Name is not valid Base64', call('echo'), headersFor('tools/call', '=?base64?ZWNo!?='), 'Mcp-Name'],
    ['Mcp-Name is missing', call('echo'), headersFor('tools/call'), 'Mcp-Name'],
    ['Mcp-Method is missing', call('echo'), { 'mcp-protocol-version': VERSION, 'mcp-name': 'echo' }, 'Mcp-Method'],
    [
      'MCP-Protocol-Version is missing',
      call('echo'),
      { 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
      'MCP-Protocol-Version',
    ],
    [
      'MCP-Protocol-Version differs from _meta',
      call('echo'),
      { ...headersFor('tools/call', 'echo'), 'mcp-protocol-version': '2025-11-25' },
      'MCP-Protocol-Version',
    ],
    [
      'a 2025-era body under a modern MCP-Protocol-Version',
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {} } },
      headersFor('tools/call', 'echo'),
      'MCP-Protocol-Version',
    ],
    [
      'resources/read with another URI',
      { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///etc/shadow', _meta: META } },
      headersFor('resources/read', 'file:///tmp/notes'),
      'Mcp-Name',
    ],
  ];

  it.each(cases)('%s: 400 with -32020, no exchange, nothing upstream', async (_name, body, headers, header) => {
    const { upstream, url } = await setup();
    const user = await sharedAs().userToken('alice', [READ, WRITE, 'files:delete']);
    const res = await postMcp(url, user, body, headers);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({
      jsonrpc: '2.0',
      error: { code: -32020, data: { header } },
    });
    expect(upstream.seen).toEqual([]);
    expect(sharedAs().exchanges).toEqual([]);
  });

  it('refuses a batch carrying a modern message (the revision allows one message per POST)', async () => {
    const { upstream, url } = await setup();
    const user = await sharedAs().userToken('alice', [READ, WRITE]);
    const res = await postMcp(url, user, [call('echo', {}, 1), call('echo', {}, 2)], {
      'mcp-protocol-version': VERSION,
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: -32600 } });
    expect(upstream.seen).toEqual([]);
    expect(sharedAs().exchanges).toEqual([]);
  });
});

describe('per-user list results are private', () => {
  it.each(['json', 'sse'] as const)(
    'a filtered tools/list leaves with cacheScope "private" over %s, ttlMs kept',
    async (mode) => {
      const { url } = await setup({
        server: { legacy: 'reject', responseMode: mode, toolsListCache: { ttlMs: 60_000, cacheScope: 'public' } },
        mcp: { toolScopes: { delete_file: ['files:delete'] }, filterToolsList: true },
      });
      const user = await sharedAs().userToken('bob', [READ]);
      const body = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: META } };
      const res = await postMcp(url, user, body, headersFor('tools/list'));
      expect(res.status).toBe(200);
      expect(String(res.headers['content-type'])).toContain(mode === 'sse' ? 'text/event-stream' : 'application/json');
      const answer = messagesOf(res.text, res.headers['content-type']).find((m) => m.id === 7) as {
        result: { tools: Array<{ name: string }>; cacheScope: string; ttlMs: number };
      };
      expect(answer.result.tools.map((t) => t.name).sort()).toEqual(['echo', 'read_file']);
      expect(answer.result.cacheScope).toBe('private');
      expect(answer.result.ttlMs).toBe(60_000);
    },
  );

  it('scopeImplies: a broader scope the user holds counts as the narrower one when filtering', async () => {
    const list = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: META } };
    const names = async (mcp: Record<string, unknown>) => {
      const { url } = await setup({ server: { legacy: 'reject', responseMode: 'json' }, mcp });
      const user = await sharedAs().userToken('bob', [READ, 'files:admin']);
      const res = await postMcp(url, user, list, headersFor('tools/list'));
      return (JSON.parse(res.text) as { result: { tools: Array<{ name: string }> } }).result.tools
        .map((t) => t.name)
        .sort();
    };
    const base = { toolScopes: { delete_file: ['files:delete'] }, filterToolsList: true };
    expect(await names(base)).toEqual(['echo', 'read_file']);
    expect(await names({ ...base, scopeImplies: { 'files:admin': ['files:delete'] } })).toEqual([
      'delete_file',
      'echo',
      'read_file',
    ]);
  });

  it('an unfiltered tools/list passes as the server sent it', async () => {
    const { url } = await setup({
      server: { legacy: 'reject', responseMode: 'json', toolsListCache: { ttlMs: 60_000, cacheScope: 'public' } },
    });
    const user = await sharedAs().userToken('bob', [READ]);
    const body = { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: META } };
    const res = await postMcp(url, user, body, headersFor('tools/list'));
    const answer = JSON.parse(res.text) as { result: { tools: unknown[]; cacheScope: string } };
    expect(answer.result.tools).toHaveLength(3);
    expect(answer.result.cacheScope).toBe('public');
  });
});

describe('scope challenges (2026-07-28 "Scope Challenge Handling")', () => {
  it('one 403 names every scope a subscriptions/listen needs, with resource_metadata', async () => {
    const metadata = 'https://mcp.example.com/.well-known/oauth-protected-resource';
    const { upstream, url } = await setup({
      scopes: [READ, WRITE],
      mcp: { resourceMetadata: metadata },
    });
    const user = await sharedAs().userToken('alice', [READ, WRITE]);
    const listen = {
      jsonrpc: '2.0',
      id: 3,
      method: 'subscriptions/listen',
      params: { notifications: { toolsListChanged: true, resourceSubscriptions: ['file:///a'] }, _meta: META },
    };
    const res = await postMcp(url, user, listen, headersFor('subscriptions/listen'));
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="delegate-proxy", error="insufficient_scope", scope="${RESOURCES} ${READ}", resource_metadata="${metadata}"`,
    );
    expect(upstream.seen).toEqual([]);
    expect(sharedAs().exchanges).toEqual([]);
  });

  it('a subscriptions/listen for tool list changes asks for the tools read scope only', async () => {
    const { upstream, url } = await setup();
    const user = await sharedAs().userToken('alice', [READ, WRITE]);
    const listen = {
      jsonrpc: '2.0',
      id: 3,
      method: 'subscriptions/listen',
      params: { notifications: { toolsListChanged: true }, _meta: META },
    };
    const controller = new AbortController();
    const res = await request(url, {
      method: 'POST',
      signal: controller.signal,
      headers: {
        authorization: `Bearer ${user}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...headersFor('subscriptions/listen'),
      },
      body: JSON.stringify(listen),
    });
    expect(res.statusCode).toBe(200);
    expect(String(res.headers['content-type'])).toContain('text/event-stream');
    let text = '';
    const waiting: Array<() => void> = [];
    res.body.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      for (const w of waiting.splice(0)) w();
    });
    res.body.on('error', () => undefined);
    const until = async (needle: string) => {
      while (!text.includes(needle)) await new Promise<void>((resolve) => waiting.push(resolve));
    };
    await until('subscriptions/acknowledged');
    upstream.toolsChanged();
    await until('notifications/tools/list_changed');
    controller.abort();
    expect(decodeJwt(String(upstream.seen[0]?.headers.authorization).slice(7)).scope).toBe(READ);
  });

  it('a 401 on a route with resourceMetadata points at it', async () => {
    const metadata = 'https://mcp.example.com/.well-known/oauth-protected-resource';
    const { proxy } = await setup({ mcp: { resourceMetadata: metadata } });
    const res = await request(`${proxy.url}/mcp`, { method: 'POST', body: '{}' });
    await res.body.text();
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="delegate-proxy", resource_metadata="${metadata}"`);
  });
});

describe('multi round-trip requests (MRTR)', () => {
  const confirm = z.object({ confirm: z.boolean() });
  // The client declares elicitation, or the server may not ask for input.
  const meta = { ...META, 'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } } };
  const server: McpV2Options = {
    legacy: 'reject',
    responseMode: 'json',
    extend: (s) =>
      s.registerTool('wipe', { inputSchema: z.object({ path: z.string() }) }, async ({ path }, ctx) => {
        if (acceptedContent(ctx.mcpReq.inputResponses, 'confirm', confirm)?.confirm !== true) {
          return inputRequired({
            inputRequests: { confirm: inputRequired.elicit({ message: `Wipe ${path}?`, requestedSchema: confirm }) },
          });
        }
        return { content: [{ type: 'text', text: `wiped ${path}` }] };
      }),
  };

  it('input_required reaches the agent untouched; the retry is authorized afresh', async () => {
    const { upstream, url } = await setup({ server, mcp: { toolScopes: { wipe: ['files:delete'] } } });
    const admin = await sharedAs().userToken('alice', [READ, WRITE, 'files:delete']);
    const writer = await sharedAs().userToken('alice', [READ, WRITE]);
    const first = await postMcp(url, admin, call('wipe', { path: '/data' }, 1, meta), headersFor('tools/call', 'wipe'));
    expect(first.status).toBe(200);
    expect(JSON.parse(first.text)).toMatchObject({
      id: 1,
      result: {
        resultType: 'input_required',
        inputRequests: { confirm: { method: 'elicitation/create', params: { message: 'Wipe /data?' } } },
      },
    });

    const retry = {
      ...call('wipe', { path: '/data' }, 2, meta),
      params: {
        ...call('wipe', { path: '/data' }, 2, meta).params,
        inputResponses: { confirm: { action: 'accept', content: { confirm: true } } },
      },
    };
    // The retry is a request like any other: a token without the tool's scope is refused...
    const refused = await postMcp(url, writer, retry, headersFor('tools/call', 'wipe'));
    expect(refused.status).toBe(403);
    // ...headers that disagree with it too...
    const mismatched = await postMcp(url, admin, retry, headersFor('tools/call', 'echo'));
    expect(mismatched.status).toBe(400);
    expect(upstream.seen).toHaveLength(1);
    // ...and with the scope it passes, on a delegated token of its own.
    const done = await postMcp(url, admin, retry, headersFor('tools/call', 'wipe'));
    expect(done.status).toBe(200);
    expect(JSON.parse(done.text)).toMatchObject({
      id: 2,
      result: { content: [{ type: 'text', text: 'wiped /data' }] },
    });
    expect(upstream.seen).toHaveLength(2);
    const scopes = upstream.seen.map((s) => decodeJwt(String(s.headers.authorization).slice(7)).scope);
    expect(scopes).toEqual(['files:delete mcp:tools:write', 'files:delete mcp:tools:write']);
    expect(upstream.seen[1]?.body).toContain('inputResponses');
  });
});
