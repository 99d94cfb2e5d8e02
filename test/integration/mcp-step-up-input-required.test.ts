import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, signBody, TIMESTAMP_HEADER } from '../../src/step-up/signature.js';
import { useClosers } from '../helpers/closers.js';
import { postMcp } from '../helpers/mcp-post.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { mcpRoute } from '../helpers/start-mcp-proxy.js';
import { type McpV2Upstream, startMcpV2 } from '../helpers/start-mcp-v2.js';
import type { TestProxy } from '../helpers/start-proxy.js';
import { CALLBACK_SECRET, manualTimer, secretFile, startStepUpProxy } from '../helpers/step-up-harness.js';

/**
 * Step-up, MCP-native (`stepUp.mcpMode: input-required`): a 2026-07-28 tools/call that needs
 * approval is answered with an InputRequiredResult (URL elicitation to the approval page) instead
 * of being held; its retry passes once a person approved, and only once.
 */
const READ = 'mcp:tools:read';
const WRITE = 'mcp:tools:write';
const DELETE = 'files:delete';
const PAGE_BASE = 'https://approvals.example.com';
const META: Record<string, unknown> = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } },
};

const closers = useClosers();
let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

async function setup(mcpMode: 'hold' | 'input-required' = 'input-required') {
  const upstream: McpV2Upstream = await startMcpV2({ legacy: 'reject', responseMode: 'json' });
  closers.push(() => upstream.close());
  const timer = manualTimer();
  const proxy: TestProxy = await startStepUpProxy({
    as,
    timer,
    config: {
      stepUp: {
        approval: { callbackSecretFile: secretFile(), callbackBaseUrl: PAGE_BASE, timeoutSeconds: 60 },
      },
      routes: [mcpRoute(upstream.url, { stepUp: { scopes: [DELETE], rules: [{ tool: 'delete_file' }], mcpMode } })],
    },
  });
  closers.push(() => proxy.close());
  const user = await as.userToken('alice', [READ, WRITE, DELETE]);
  return { upstream, proxy, user, timer };
}

function deleteCall(id: number, path: string, inputResponses?: Record<string, unknown>) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: 'delete_file',
      arguments: { path },
      _meta: META,
      ...(inputResponses === undefined ? {} : { inputResponses }),
    },
  };
}

/** A 2026-07-28 `tools/call` of delete_file, its mirrored headers set. */
async function post(url: string, user: string, body: unknown) {
  const res = await postMcp(url, user, body, {
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': 'delete_file',
  });
  return { status: res.status, json: JSON.parse(res.text) as Record<string, unknown> };
}

async function decide(adminUrl: string, id: string, decision: 'approved' | 'denied', bodySha256: string) {
  const text = JSON.stringify({ decision, bodySha256 });
  const ts = Math.floor(Date.now() / 1000);
  const res = await request(`${adminUrl}/step-up/${id}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [TIMESTAMP_HEADER]: String(ts),
      [SIGNATURE_HEADER]: signBody(CALLBACK_SECRET, ts, text),
    },
    body: text,
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

/** The approval the answer asks for: its input key, id and page URL. */
function inputRequestOf(answer: Record<string, unknown>): { key: string; id: string; url: string } {
  const result = answer.result as { resultType: string; inputRequests: Record<string, { params: { url: string } }> };
  expect(result.resultType).toBe('input_required');
  const [key, request] = Object.entries(result.inputRequests)[0]!;
  const url = new URL(request.params.url);
  return { key, id: url.searchParams.get('id')!, url: request.params.url };
}

/** What the approval is bound to (docs/step-up.md): SHA-256 of the tool name and arguments. */
function digestOf(path: string): string {
  return createHash('sha256')
    .update(JSON.stringify(['delete_file', { path }]))
    .digest('hex');
}

describe('stepUp.mcpMode: input-required', () => {
  it('answers with a URL elicitation, forwards the approved retry once, and never reuses the approval', async () => {
    const { upstream, proxy, user } = await setup();
    const url = `${proxy.url}/mcp`;
    const first = await post(url, user, deleteCall(1, '/data'));
    expect(first.status).toBe(200);
    const asked = inputRequestOf(first.json);
    expect(asked.url).toBe(`${PAGE_BASE}/step-up?id=${asked.id}`);
    expect(first.json).toMatchObject({
      id: 1,
      result: { inputRequests: { [asked.key]: { method: 'elicitation/create', params: { mode: 'url' } } } },
    });
    expect(upstream.seen).toEqual([]);
    // An answer, not a refusal: no error logged for it.
    expect(proxy.logs.lines().filter((l) => l.msg === 'request refused' || l.code !== undefined)).toEqual([]);

    const digest = digestOf('/data');
    expect(await decide(proxy.adminUrl, asked.id, 'approved', digest)).toMatchObject({ status: 200 });

    const retry = await post(url, user, deleteCall(2, '/data', { [asked.key]: { action: 'accept' } }));
    expect(retry.status).toBe(200);
    expect(retry.json).toMatchObject({ id: 2, result: { content: [{ type: 'text', text: 'deleted /data' }] } });
    expect(upstream.seen).toHaveLength(1);
    // The call's own scope plus the approved one, for this call only.
    expect(decodeJwt(String(upstream.seen[0]?.headers.authorization).slice(7)).scope).toBe(`${DELETE} ${WRITE}`);

    // Single use: the same retry again asks for a new approval and reaches nobody.
    const again = await post(url, user, deleteCall(3, '/data', { [asked.key]: { action: 'accept' } }));
    expect(inputRequestOf(again.json).id).not.toBe(asked.id);
    expect(upstream.seen).toHaveLength(1);
  });

  it('an approval is bound to the call: a retry with other arguments, or after a denial, does not pass', async () => {
    const { upstream, proxy, user } = await setup();
    const url = `${proxy.url}/mcp`;
    const asked = inputRequestOf((await post(url, user, deleteCall(1, '/data'))).json);
    const digest = digestOf('/data');
    await decide(proxy.adminUrl, asked.id, 'approved', digest);
    const other = await post(url, user, deleteCall(2, '/etc', { [asked.key]: { action: 'accept' } }));
    expect(inputRequestOf(other.json).id).not.toBe(asked.id);

    const denied = inputRequestOf((await post(url, user, deleteCall(3, '/data'))).json);
    await decide(proxy.adminUrl, denied.id, 'denied', digest);
    const refused = await post(url, user, deleteCall(4, '/data', { [denied.key]: { action: 'accept' } }));
    expect(refused.status).toBe(403);
    expect(upstream.seen).toEqual([]);
  });
});

describe('stepUp.mcpMode: hold (the default) and clients without URL elicitation', () => {
  it('a client that did not declare elicitation.url is held as in the default mode', async () => {
    const { upstream, proxy, user, timer } = await setup();
    const body = deleteCall(1, '/data');
    body.params._meta = { ...META, 'io.modelcontextprotocol/clientCapabilities': {} };
    const pending = post(`${proxy.url}/mcp`, user, body);
    await expect.poll(() => timer.pending).toBe(1);
    timer.fireAll();
    expect((await pending).status).toBe(403);
    expect(upstream.seen).toEqual([]);
  });
});
