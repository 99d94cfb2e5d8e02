import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer } from '../../src/server/listen.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy, type TestProxy } from '../helpers/start-proxy.js';

/**
 * Property: over generated 2026-07-28 messages and mirrored headers (right, wrong, missing, Base64
 * or not), nothing the upstream receives has headers that disagree with its body. The oracle
 * below is written from the spec's table ("Standard Request Headers"), apart from the proxy's code.
 */
const SCOPES = ['mcp:tools:read', 'mcp:tools:write', 'mcp:resources:read', 'mcp:prompts:read'];
const NAME_FIELD: Record<string, string> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
};

let as: TestAuthorizationServer;
let proxy: TestProxy;
let upstream: ReturnType<typeof createServer>;
const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
let user: string;

beforeAll(async () => {
  as = await startAs();
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: req.headers, body });
      const id = (JSON.parse(body) as { id?: unknown }).id;
      res.writeHead(id === undefined ? 202 : 200, { 'content-type': 'application/json' });
      res.end(id === undefined ? undefined : JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  proxy = await startProxy({
    as,
    config: {
      routes: [
        {
          name: 'mcp',
          match: { pathPrefix: '/mcp' },
          upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
          scopes: SCOPES,
          mcp: {},
        },
      ],
    },
  });
  user = await as.userToken('alice', SCOPES);
});

afterAll(async () => {
  await proxy?.close();
  if (upstream) await closeServer(upstream);
  await as?.close();
});

/** The body value a header mirrors, decoded as the spec's "Value Encoding" says (or undefined). */
function decoded(value: string): string | undefined {
  const m = /^=\?base64\?(.*)\?=$/.exec(value);
  if (m === null) return /^[\x20-\x7e\t]*$/.test(value) ? value : undefined;
  const payload = m[1]!;
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.toString('base64') !== payload) return undefined;
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    return text.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Why a forwarded request's headers and body disagree, or undefined when they agree. */
function disagreement(headers: IncomingHttpHeaders, body: string): string | undefined {
  const m = JSON.parse(body) as { id?: unknown; method: string; params?: Record<string, unknown> };
  const isRequest = m.id !== undefined;
  const claimed = (m.params?._meta as Record<string, unknown> | undefined)?.['io.modelcontextprotocol/protocolVersion'];
  const version = headers['mcp-protocol-version'];
  const method = headers['mcp-method'];
  const name = headers['mcp-name'];
  if (version !== undefined && version !== claimed) return 'version differs';
  if (isRequest && version === undefined) return 'version missing';
  if (method !== undefined && method !== m.method) return 'method differs';
  if (isRequest && method === undefined) return 'method missing';
  const field = NAME_FIELD[m.method];
  const bodyName = field === undefined ? undefined : m.params?.[field];
  if (name !== undefined && (typeof name !== 'string' || decoded(name) !== bodyName)) return 'name differs';
  if (isRequest && typeof bodyName === 'string' && name === undefined) return 'name missing';
  return undefined;
}

const names = fc.constantFrom('echo', 'delete_file', 'a b', 'héllo', '=?base64?ZWNobw==?=', 'file:///x');
const encode = (s: string) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;

const scenario = fc.record({
  method: fc.constantFrom('tools/call', 'tools/list', 'resources/read', 'prompts/get', 'server/discover', 'tasks/get'),
  request: fc.boolean(),
  bodyName: names,
  claim: fc.constantFrom('2026-07-28', '2027-01-01'),
  versionHeader: fc.option(fc.constantFrom('2026-07-28', '2027-01-01', '2025-11-25'), { nil: undefined }),
  methodHeader: fc.option(fc.constantFrom('tools/call', 'tools/list', 'resources/read', 'prompts/get'), {
    nil: undefined,
  }),
  nameHeader: fc.option(
    fc.oneof(
      names.filter((n) => /^[\x20-\x7e]*$/.test(n)),
      names.map(encode),
    ),
    { nil: undefined },
  ),
});

describe('mirrored headers, property', () => {
  it('the upstream never receives a message whose headers and body disagree', async () => {
    let forwarded = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        const field = NAME_FIELD[s.method];
        const params: Record<string, unknown> = {
          _meta: { 'io.modelcontextprotocol/protocolVersion': s.claim },
          ...(field === undefined ? {} : { [field]: s.bodyName }),
          ...(s.method === 'tools/call' ? { arguments: {} } : {}),
        };
        const message = { jsonrpc: '2.0', ...(s.request ? { id: 1 } : {}), method: s.method, params };
        const headers: Record<string, string> = {
          authorization: `Bearer ${user}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        };
        if (s.versionHeader !== undefined) headers['mcp-protocol-version'] = s.versionHeader;
        if (s.methodHeader !== undefined) headers['mcp-method'] = s.methodHeader;
        if (s.nameHeader !== undefined) headers['mcp-name'] = s.nameHeader;
        const before = received.length;
        const res = await request(`${proxy.url}/mcp`, { method: 'POST', headers, body: JSON.stringify(message) });
        await res.body.text();
        const got = received.slice(before);
        for (const r of got) expect(disagreement(r.headers, r.body)).toBeUndefined();
        if (got.length === 0) expect([400, 403]).toContain(res.statusCode);
        forwarded += got.length;
      }),
      { numRuns: 300 },
    );
    // The generator reaches both sides of the property.
    expect(forwarded).toBeGreaterThan(0);
  });
});
