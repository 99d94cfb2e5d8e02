import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type DevSetup, startDevSetup } from '../../src/dev/dev-setup.js';
import { createLogger } from '../../src/observability/logger.js';
import { createLogSink } from '../helpers/log-sink.js';

let setup: DevSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

/** The --dev setup on loopback, every server on port 0, logging into a sink. */
function startLocalDev(): Promise<DevSetup> {
  return startDevSetup({
    host: '127.0.0.1',
    proxyPort: 0,
    adminPort: 0,
    asPort: 0,
    upstreamPort: 0,
    mcpPort: 0,
    logger: createLogger({ level: 'info', destination: createLogSink() }),
  });
}

describe('--dev setup', () => {
  it('the printed curl reaches the echo upstream with a delegated token, never the user token', async () => {
    setup = await startLocalDev();
    const match = /-H "Authorization: Bearer ([^"]+)" (\S+)$/.exec(setup.curl);
    expect(match).not.toBeNull();
    const [, token, url] = match!;
    expect(url!.startsWith(setup.proxyUrl)).toBe(true);
    const res = await request(url!, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).not.toContain(token!);
    const body = JSON.parse(text) as { path: string; delegatedToken: { claims: Record<string, unknown> } };
    expect(body.path).toBe('/hello');
    expect(body.delegatedToken.claims).toMatchObject({
      sub: 'alice',
      scope: 'documents:read',
      aud: setup.upstream.url,
    });
    const received = setup.upstream.requests[0]!.headers.authorization!.slice(7);
    expect(received).not.toBe(token);
    expect(decodeJwt(received).client_id).toBe('delegate-proxy-dev');
  });
});

/** A printed curl command as a request: URL, headers (with `$TOKEN` filled in) and body. */
function parseCurl(curl: string, token: string): { url: string; headers: Record<string, string>; body: string } {
  const url = /^curl -s (\S+)/.exec(curl)?.[1];
  const body = / -d '([^']*)'$/.exec(curl)?.[1];
  const headers: Record<string, string> = {};
  for (const [, name, value] of curl.matchAll(/-H "([^:]+): ([^"]*)"/g))
    headers[name!] = value!.replace('$TOKEN', token);
  if (url === undefined || body === undefined) throw new Error(`not a curl command: ${curl}`);
  return { url, headers, body };
}

/** The JSON-RPC answer of a JSON or an SSE response body. */
function rpcAnswer(text: string): { result: { content: Array<{ text: string }> } } {
  const data = text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '');
  return JSON.parse(data) as { result: { content: Array<{ text: string }> } };
}

describe('--dev setup: the MCP route', () => {
  it('both printed MCP requests (2026-07-28 and 2025-11-25) call whoami with a delegated token for alice', async () => {
    setup = await startLocalDev();
    const { modern, legacy } = setup.mcpCurls;
    expect(modern).toContain('"Mcp-Method: tools/call"');
    expect(modern).toContain('"Mcp-Name: whoami"');
    expect(modern).toContain('"io.modelcontextprotocol/protocolVersion":"2026-07-28"');
    expect(legacy).toContain('"MCP-Protocol-Version: 2025-11-25"');
    for (const curl of [modern, legacy]) {
      const { url, headers, body } = parseCurl(curl, setup.userToken);
      expect(url).toBe(`${setup.proxyUrl}/mcp`);
      const res = await request(url, { method: 'POST', headers, body });
      const text = await res.body.text();
      expect(res.statusCode, text).toBe(200);
      expect(text).not.toContain(setup.userToken);
      const claims = JSON.parse(rpcAnswer(text).result.content[0]!.text) as Record<string, unknown>;
      // Exchanged for this call: alice, the write scope only, the MCP server as audience.
      expect(claims).toMatchObject({ sub: 'alice', scope: 'mcp:tools:write', aud: setup.mcp.url });
    }
    // The MCP server verifies tokens itself: alice's own token (not meant for it) is refused there.
    const direct = parseCurl(legacy, setup.userToken);
    const refused = await request(`${setup.mcp.url}/mcp`, {
      method: 'POST',
      headers: direct.headers,
      body: direct.body,
    });
    await refused.body.dump();
    expect(refused.statusCode).toBe(401);
    // docs/mcp.md "Try it": a method outside the scope table is refused by the proxy.
    const { url, headers, body } = parseCurl(legacy, setup.userToken);
    const res = await request(url, { method: 'POST', headers, body: body.replace('"tools/call"', '"files/delete"') });
    expect(res.statusCode).toBe(403);
    expect(((await res.body.json()) as { error: { code: number } }).error.code).toBe(-32601);
  });

  it('the SDK v2 client, pinned to 2026-07-28 and in auto mode, lists and calls through the proxy', async () => {
    setup = await startLocalDev();
    for (const mode of [{ pin: '2026-07-28' }, 'auto'] as const) {
      const client = new Client({ name: 'dev-test', version: '1.0.0' }, { versionNegotiation: { mode } });
      const transport = new StreamableHTTPClientTransport(new URL(`${setup.proxyUrl}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${setup.userToken}` } },
      });
      await client.connect(transport);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami']);
      const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
      expect(result.content).toEqual([{ type: 'text', text: 'hi' }]);
      await client.close();
    }
  });
});
