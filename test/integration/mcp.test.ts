import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createFilesServer, createMcpHttpHandler } from '../../examples/mcp-server/server.js';
import { createGuard, type Guard } from '../../src/guard/index.js';
import { closeServer } from '../../src/server/listen.js';
import { useClosers } from '../helpers/closers.js';
import { useFileAs } from '../helpers/file-as.js';
import { postMcp } from '../helpers/mcp-post.js';
import type { TestAuthorizationServer } from '../helpers/start-as.js';
import { startMcpProxy } from '../helpers/start-mcp-proxy.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

const AUDIENCE = 'https://mcp.internal';
const READ = 'mcp:tools:read';
const WRITE = 'mcp:tools:write';
const DELETE = 'files:delete';

const closers = useClosers();

const sharedAs = useFileAs({ clearExchanges: true });

/** What the MCP server received over HTTP, before the SDK saw it. */
interface SeenRequest {
  readonly method: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  /** JSON-RPC methods in the body. */
  readonly rpc: string[];
  /** Tool names of tools/call messages in the body. */
  readonly tools: string[];
}

interface McpUpstream {
  readonly url: string;
  readonly seen: SeenRequest[];
  readonly files: Map<string, string>;
}

function rpcOf(body: string): { rpc: string[]; tools: string[] } {
  if (body === '') return { rpc: [], tools: [] };
  const parsed: unknown = JSON.parse(body);
  const messages = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{
    method?: string;
    params?: { name?: string };
  }>;
  return {
    rpc: messages.flatMap((m) => (m.method === undefined ? [] : [m.method])),
    tools: messages.flatMap((m) => (m.method === 'tools/call' && m.params?.name !== undefined ? [m.params.name] : [])),
  };
}

/** The example server (official SDK + guard), wrapped to record every request body it is handed. */
async function startMcpUpstream(
  guard: Guard,
  options: { enableJsonResponse?: boolean; extend?: (server: McpServer) => void } = {},
): Promise<McpUpstream> {
  const seen: SeenRequest[] = [];
  const files = new Map([
    ['notes.txt', 'hello'],
    ['secret.txt', 'keep me'],
  ]);
  const handle = createMcpHttpHandler({
    guard,
    enableJsonResponse: options.enableJsonResponse ?? false,
    createMcpServer: () => {
      const server = createFilesServer(guard, files);
      options.extend?.(server);
      return server;
    },
  });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      // @hono/node-server (inside the SDK transport) reads `rawBody` when the stream was consumed.
      Object.assign(req, { rawBody: raw });
      const body = raw.toString('utf8');
      seen.push({ method: req.method ?? '', headers: req.headers, body, ...rpcOf(body) });
      handle(req, res).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => closeServer(server));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, files };
}

interface Setup {
  readonly as: TestAuthorizationServer;
  readonly upstream: McpUpstream;
  readonly proxy: TestProxy;
  connect(user: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }>;
}

async function setup(
  options: {
    mcp?: Record<string, unknown>;
    scopes?: string[];
    enableJsonResponse?: boolean;
    extend?: (server: McpServer) => void;
  } = {},
): Promise<Setup> {
  const as = sharedAs();
  const guard = createGuard({ issuer: as.issuer, audience: AUDIENCE, jwksUri: as.jwksUri });
  const upstream = await startMcpUpstream(guard, options);
  const proxy = await startMcpProxy(closers, as, upstream.url, options);
  return {
    as,
    upstream,
    proxy,
    async connect(user) {
      const client = new Client({ name: 'test-agent', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(`${proxy.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${user}` } },
      });
      await client.connect(transport);
      closers.push(() => client.close());
      return { client, transport };
    },
  };
}

function tokenOf(seen: SeenRequest): string {
  return (seen.headers.authorization ?? '').replace(/^Bearer /, '');
}

function scopeOf(seen: SeenRequest): string {
  return String(decodeJwt(tokenOf(seen)).scope ?? '');
}

async function rejection(promise: Promise<unknown>): Promise<StreamableHTTPError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StreamableHTTPError);
  return err as StreamableHTTPError;
}

async function post(url: string, user: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await postMcp(url, user, body, headers);
  return { ...res, json: () => JSON.parse(res.text) as unknown };
}

describe('MCP scopes through the proxy (SDK client -> proxy -> SDK server)', () => {
  it('a user granted mcp:tools:read only can list tools, and a tool call fails with 403 before reaching the server', async () => {
    const { as, upstream, connect } = await setup();
    const user = await as.userToken('alice', [READ]);
    const { client } = await connect(user);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['delete_file', 'read_file']);

    const err = await rejection(client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } }));
    expect(err.code).toBe(403);
    // The SDK puts the response body in the message: the JSON-RPC denial with the scopes needed.
    expect(err.message).toContain('"code":-32003');
    expect(err.message).toContain(`"requiredScopes":["${WRITE}"]`);
    expect(upstream.seen.flatMap((s) => s.rpc)).not.toContain('tools/call');
    // The AS decided: it was asked for the write scope and refused.
    expect(as.exchanges.filter((e) => e.params.scope === WRITE).map((e) => e.outcome)).toEqual(['invalid_scope']);
  });

  it('a user granted read and write can list and call; the server only ever sees delegated tokens for its audience', async () => {
    const { as, upstream, connect } = await setup();
    const user = await as.userToken('alice', [READ, WRITE]);
    const { client } = await connect(user);
    expect((await client.listTools()).tools).toHaveLength(2);
    const result = await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } });
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: 'hello' }]);

    expect(upstream.seen.length).toBeGreaterThanOrEqual(4);
    for (const seen of upstream.seen) {
      const token = tokenOf(seen);
      expect(token).not.toBe(user);
      expect(seen.body).not.toContain(user);
      const claims = decodeJwt(token);
      expect(claims.aud).toBe(AUDIENCE);
      expect(claims.sub).toBe('alice');
    }
    // Least privilege per message: listing carries the read scope only, calling the write scope only.
    const byRpc = (m: string) => upstream.seen.find((s) => s.rpc.includes(m))!;
    expect(scopeOf(byRpc('initialize'))).toBe(READ);
    expect(scopeOf(byRpc('tools/list'))).toBe(READ);
    expect(scopeOf(byRpc('tools/call'))).toBe(WRITE);
  });

  it('asks the AS for files:delete only for delete_file; calls to other tools never carry it', async () => {
    const { as, upstream, connect } = await setup();
    const user = await as.userToken('alice', [READ, WRITE, DELETE]);
    const { client } = await connect(user);
    await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } });
    const deleted = await client.callTool({ name: 'delete_file', arguments: { path: 'secret.txt' } });
    expect(deleted.content).toEqual([{ type: 'text', text: 'deleted secret.txt' }]);
    await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } });

    expect(as.exchanges.map((e) => e.params.scope).filter((s) => s?.includes(DELETE))).toEqual([`${DELETE} ${WRITE}`]);
    const calls = upstream.seen.filter((s) => s.rpc.includes('tools/call'));
    expect(calls.map((s) => [s.tools[0], scopeOf(s)])).toEqual([
      ['read_file', WRITE],
      ['delete_file', `${DELETE} ${WRITE}`],
      ['read_file', WRITE],
    ]);
  });

  it('a user without files:delete gets 403 for delete_file and the server never sees the call', async () => {
    const { as, upstream, connect } = await setup();
    const user = await as.userToken('alice', [READ, WRITE]);
    const { client } = await connect(user);
    const err = await rejection(client.callTool({ name: 'delete_file', arguments: { path: 'secret.txt' } }));
    expect(err.code).toBe(403);
    expect(err.message).toContain(`"requiredScopes":["${DELETE}","${WRITE}"]`);
    expect(as.exchanges.at(-1)).toMatchObject({ params: { scope: `${DELETE} ${WRITE}` }, outcome: 'invalid_scope' });
    expect(upstream.seen.flatMap((s) => s.tools)).toEqual([]);
    expect(upstream.files.has('secret.txt')).toBe(true);
  });

  it('the server-side guard still refuses a tool whose scope the proxy was not configured to require', async () => {
    // Misconfigured proxy (no toolScopes): defence in depth at the server catches it.
    const { as, upstream, connect } = await setup({ mcp: {} });
    const user = await as.userToken('alice', [READ, WRITE, DELETE]);
    const { client } = await connect(user);
    const result = await client.callTool({ name: 'delete_file', arguments: { path: 'secret.txt' } });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain(`lacks scope ${DELETE}`);
    expect(upstream.files.has('secret.txt')).toBe(true);
  });
});

describe('filterToolsList', () => {
  for (const enableJsonResponse of [true, false]) {
    const kind = enableJsonResponse ? 'JSON' : 'SSE';
    it(`hides only the tools whose own toolScopes the user lacks; a reader sees the catalogue (${kind} responses)`, async () => {
      const { as, upstream, connect } = await setup({
        enableJsonResponse,
        mcp: { toolScopes: { delete_file: [DELETE] }, filterToolsList: true },
      });
      const names = async (scopes: string[]) => {
        const { client } = await connect(await as.userToken('alice', scopes));
        return (await client.listTools()).tools.map((t) => t.name).sort();
      };
      expect(await names([READ, WRITE, DELETE])).toEqual(['delete_file', 'read_file']);
      expect(await names([READ, WRITE])).toEqual(['read_file']);
      // mcp:tools:read is the right to see the catalogue without acting: no mcp:tools:write needed.
      expect(await names([READ])).toEqual(['read_file']);
      expect(await names([READ, DELETE])).toEqual(['delete_file', 'read_file']);
      const listed = upstream.seen.find((s) => s.rpc.includes('tools/list'))!;
      expect(listed.headers.accept).toBe('application/json, text/event-stream');
    });
  }

  it('leaves other answers untouched', async () => {
    const { as, connect } = await setup({ mcp: { filterToolsList: true } });
    const { client } = await connect(await as.userToken('alice', [READ, WRITE]));
    const result = await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } });
    expect(result.content).toEqual([{ type: 'text', text: 'hello' }]);
  });
});

describe('JSON-RPC policy answers', () => {
  const rpc = (id: number | undefined, method: string, params?: unknown) => ({
    jsonrpc: '2.0',
    ...(id === undefined ? {} : { id }),
    method,
    ...(params === undefined ? {} : { params }),
  });

  it('refuses a whole batch with one denied message, naming the ids, before any exchange', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', [READ, WRITE, 'mcp:resources:read']);
    const batch = [rpc(1, 'tools/list'), rpc(2, 'resources/list'), rpc(undefined, 'notifications/initialized')];
    const res = await post(`${proxy.url}/mcp`, user, JSON.stringify(batch));
    expect(res.status).toBe(403);
    // One challenge for the whole operation: the union of what its messages need.
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="delegate-proxy", error="insufficient_scope", scope="mcp:resources:read ${READ}"`,
    );
    expect(res.json()).toEqual([
      {
        jsonrpc: '2.0',
        id: 1,
        error: { code: -32003, message: expect.any(String), data: { error: 'batch_denied', deniedIds: [2] } },
      },
      {
        jsonrpc: '2.0',
        id: 2,
        error: {
          code: -32003,
          message: 'Insufficient scope',
          data: { error: 'insufficient_scope', requiredScopes: ['mcp:resources:read'] },
        },
      },
    ]);
    expect(as.exchanges).toHaveLength(0);
    expect(upstream.seen).toHaveLength(0);
  });

  it('answers the AS refusal of a single request as a JSON-RPC error with the scope challenge', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', [READ]);
    const res = await post(
      `${proxy.url}/mcp`,
      user,
      JSON.stringify(rpc(7, 'tools/call', { name: 'read_file', arguments: {} })),
    );
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="delegate-proxy", error="insufficient_scope", scope="${WRITE}"`,
    );
    expect(res.json()).toMatchObject({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32003, data: { requiredScopes: [WRITE] } },
    });
    expect(upstream.seen).toHaveLength(0);
  });

  it('checks a tools/call sent without an id (as a notification) like any tools/call', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', [READ]);
    const res = await post(
      `${proxy.url}/mcp`,
      user,
      JSON.stringify(rpc(undefined, 'tools/call', { name: 'delete_file' })),
    );
    expect(res.status).toBe(403);
    expect(as.exchanges.at(-1)).toMatchObject({ params: { scope: `${DELETE} ${WRITE}` }, outcome: 'invalid_scope' });
    expect(upstream.seen).toHaveLength(0);
  });

  it('answers malformed JSON with HTTP 400 and a JSON-RPC parse error', async () => {
    const { as, upstream, proxy } = await setup();
    const res = await post(`${proxy.url}/mcp`, await as.userToken('alice', [READ]), '{"jsonrpc":"2.0",');
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    expect(as.exchanges).toHaveLength(0);
    expect(upstream.seen).toHaveLength(0);
  });

  it('answers a body that is not a JSON-RPC message with -32600', async () => {
    const { as, upstream, proxy } = await setup();
    const res = await post(
      `${proxy.url}/mcp`,
      await as.userToken('alice', [READ]),
      JSON.stringify({ id: 3, method: 'tools/list' }),
    );
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32600, message: 'Invalid Request' } });
    expect(upstream.seen).toHaveLength(0);
  });

  it('refuses a message that repeats a key, at every depth, with 400 and -32600: the upstream gets exactly what was authorized', async () => {
    const { as, upstream, proxy } = await setup();
    const reader = await as.userToken('alice', [READ]);
    const writer = await as.userToken('bob', [READ, WRITE]);
    const cases: Array<[string, string]> = [
      [reader, '{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}'],
      // The same key spelled with an escape is the same key.
      [reader, '{"jsonrpc":"2.0","id":1,"method":"tools/call","\\u006dethod":"tools/list"}'],
      [
        writer,
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_file","name":"read_file","arguments":{"path":"secret.txt"}}}',
      ],
      [
        writer,
        '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"notes.txt"}},"params":{"name":"read_file"}}',
      ],
      [reader, '{"jsonrpc":"2.0","id":4,"id":5,"method":"tools/list"}'],
      [
        reader,
        '[{"jsonrpc":"2.0","id":6,"method":"tools/list"},{"jsonrpc":"2.0","id":7,"method":"tools/call","method":"tools/list"}]',
      ],
    ];
    for (const [user, body] of cases) {
      const res = await post(`${proxy.url}/mcp`, user, body);
      expect(res.status, body).toBe(400);
      const answer = res.json();
      const error = (Array.isArray(answer) ? answer[0] : answer) as { id: unknown; error: { code: number } };
      expect(error.error.code, body).toBe(-32600);
      expect(error.id).toBeNull();
    }
    expect(as.exchanges).toHaveLength(0);
    expect(upstream.seen).toHaveLength(0);
    expect(upstream.files.has('secret.txt')).toBe(true);
  });

  it('keeps refusing encoded bodies, BOMs, trailing data and nested batches', async () => {
    const { as, upstream, proxy } = await setup();
    const reader = await as.userToken('alice', [READ]);
    const list = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
    const refused: Array<[string | Buffer, Record<string, string>]> = [
      [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(list)]), {}],
      [Buffer.from(list, 'utf16le'), {}],
      [`${list}{"jsonrpc":"2.0","id":2,"method":"tools/call"}`, {}],
      [`[[${list}]]`, {}],
      [
        gzipSync('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"}}'),
        { 'content-encoding': 'gzip' },
      ],
    ];
    for (const [body, headers] of refused) {
      const res = await post(`${proxy.url}/mcp`, reader, body, headers);
      expect(res.status, String(body)).toBe(400);
      expect(upstream.seen, JSON.stringify(headers) + String(body)).toHaveLength(0);
    }
  });

  it('refuses a body over mcp.maxBodyBytes with 413 before any exchange', async () => {
    const { as, upstream, proxy } = await setup({ mcp: { maxBodyBytes: 1024 } });
    const big = JSON.stringify(rpc(1, 'tools/call', { name: 'read_file', arguments: { path: 'x'.repeat(2048) } }));
    const res = await post(`${proxy.url}/mcp`, await as.userToken('alice', [READ, WRITE]), big);
    expect(res.status).toBe(413);
    expect(res.json()).toMatchObject({ id: null, error: { code: -32600, data: { maxBodyBytes: 1024 } } });
    expect(as.exchanges).toHaveLength(0);
    expect(upstream.seen).toHaveLength(0);
  });

  it('refuses an unknown method with 403 and -32601, and lets it through when allowMethods names it', async () => {
    const denied = await setup();
    const user = await denied.as.userToken('alice', [READ, WRITE]);
    const res = await post(`${denied.proxy.url}/mcp`, user, JSON.stringify(rpc(4, 'admin/shutdown')));
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="delegate-proxy", error="insufficient_scope"');
    expect(res.json()).toMatchObject({ id: 4, error: { code: -32601, data: { method: 'admin/shutdown' } } });
    expect(denied.upstream.seen).toHaveLength(0);

    const allowed = await setup({ mcp: { allowMethods: ['admin/shutdown'] } });
    const user2 = await allowed.as.userToken('alice', [READ, WRITE]);
    await post(`${allowed.proxy.url}/mcp`, user2, JSON.stringify(rpc(4, 'admin/shutdown')));
    expect(allowed.upstream.seen.map((s) => s.rpc)).toEqual([['admin/shutdown']]);
    // Needs no scope of its own: the base scope.
    expect(scopeOf(allowed.upstream.seen[0]!)).toBe(READ);
  });

  it('refuses methods other than POST, GET and DELETE, and bodies on GET', async () => {
    const { as, upstream, proxy } = await setup();
    const user = await as.userToken('alice', [READ, WRITE]);
    const put = await request(`${proxy.url}/mcp`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${user}` },
      body: '{}',
    });
    await put.body.text();
    expect(put.statusCode).toBe(405);
    expect(put.headers.allow).toBe('GET, POST, DELETE');
    const get = await request(`${proxy.url}/mcp`, {
      method: 'GET',
      headers: { authorization: `Bearer ${user}`, 'content-type': 'application/json' },
      body: JSON.stringify(rpc(1, 'tools/call', { name: 'delete_file' })),
    });
    await get.body.text();
    expect(get.statusCode).toBe(400);
    expect(upstream.seen).toHaveLength(0);
  });
});

describe('Streamable HTTP passes through', () => {
  it('delivers server notifications on the GET stream while a tool call runs, and ends the session with DELETE', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { as, upstream, proxy, connect } = await setup({
      mcp: { toolScopes: { slow_task: [] } },
      extend: (server) => {
        server.registerTool('slow_task', { description: 'waits until released' }, async () => {
          // Unrelated to the request: goes out on the standalone GET stream.
          server.sendToolListChanged();
          await released;
          return { content: [{ type: 'text', text: 'done' }] };
        });
      },
    });
    const { client, transport } = await connect(await as.userToken('alice', [READ, WRITE]));
    const events: string[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      events.push('list_changed');
      release();
    });
    const call = client.callTool({ name: 'slow_task', arguments: {} }).then((r) => {
      events.push('result');
      return r;
    });
    expect((await call).content).toEqual([{ type: 'text', text: 'done' }]);
    // The tool could only finish once the notification had crossed the proxy.
    expect(events).toEqual(['list_changed', 'result']);

    const stream = upstream.seen.find((s) => s.method === 'GET')!;
    expect(stream.headers.accept).toBe('text/event-stream');
    expect(stream.headers['mcp-session-id']).toBe(transport.sessionId);
    expect(decodeJwt(tokenOf(stream)).aud).toBe(AUDIENCE);
    expect(scopeOf(stream)).toBe(READ);

    const sessionId = transport.sessionId;
    expect(sessionId).toBeDefined();
    // terminateSession throws unless the DELETE answer is a 2xx (or 405).
    await transport.terminateSession();
    const del = upstream.seen.find((s) => s.method === 'DELETE')!;
    expect(del.headers['mcp-session-id']).toBe(sessionId);
    expect(scopeOf(del)).toBe(READ);
    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain(
      'delegate_proxy_mcp_requests_total{route="tools",method="tools/call",outcome="allowed"} 1',
    );
  });

  it('passes session ids, Last-Event-ID, Accept and 202 answers unchanged', async () => {
    const as = sharedAs();
    const plain: TestUpstream = await startUpstream((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(202, { 'mcp-session-id': 'session-1' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': 'session-1' });
      res.end('id: 8\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n');
    });
    closers.push(() => plain.close());
    const proxy = await startProxy({
      as,
      config: {
        routes: [{ name: 'tools', match: { pathPrefix: '/mcp' }, upstream: plain.url, scopes: [READ], mcp: {} }],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', [READ]);

    const note = await post(`${proxy.url}/mcp`, user, '{"jsonrpc":"2.0","method":"notifications/initialized"}', {
      'mcp-session-id': 'session-1',
    });
    expect(note.status).toBe(202);
    expect(note.headers['mcp-session-id']).toBe('session-1');

    const res = await request(`${proxy.url}/mcp`, {
      headers: {
        authorization: `Bearer ${user}`,
        accept: 'text/event-stream',
        'mcp-session-id': 'session-1',
        'last-event-id': '7',
      },
    });
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(await res.body.text()).toBe(
      'id: 8\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n',
    );
    const get = plain.requests.find((r) => r.method === 'GET')!;
    expect(get.headers).toMatchObject({
      accept: 'text/event-stream',
      'mcp-session-id': 'session-1',
      'last-event-id': '7',
    });
    expect(plain.requests[0]!.headers['mcp-session-id']).toBe('session-1');
  });
});

describe('MCP observability', () => {
  it('counts messages by method and outcome and logs method, tool and outcome, never a token', async () => {
    const { as, proxy, connect } = await setup();
    const user = await as.userToken('alice', [READ]);
    const { client } = await connect(user);
    await client.listTools();
    await rejection(client.callTool({ name: 'delete_file', arguments: { path: 'secret.txt' } }));

    const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text();
    expect(metrics).toContain(
      'delegate_proxy_mcp_requests_total{route="tools",method="tools/list",outcome="allowed"} 1',
    );
    expect(metrics).toContain(
      'delegate_proxy_mcp_requests_total{route="tools",method="tools/call",outcome="denied"} 1',
    );
    expect(metrics).toContain(
      'delegate_proxy_mcp_requests_total{route="tools",method="initialize",outcome="allowed"} 1',
    );
    expect(metrics).toContain(
      'delegate_proxy_mcp_requests_total{route="tools",method="notification",outcome="allowed"} 1',
    );

    const access = proxy.logs.lines().filter((l) => l.access === true);
    expect(access.find((l) => l.mcpMethod === 'tools/call')).toMatchObject({
      status: 403,
      mcpTool: 'delete_file',
      mcpOutcome: 'denied',
    });
    expect(access.find((l) => l.mcpMethod === 'tools/list')).toMatchObject({ status: 200, mcpOutcome: 'allowed' });
    expect(proxy.logs.text()).not.toContain(user);
  });
});
