import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';

// Found by the benchmark (bench/run.ts, MCP tools/list configurations): an agent that leaves before
// a filtered MCP response arrives made the response filter pipe into a destroyed response, which
// threw outside any handler and ended the process. The proxy must not crash on a request.
const closers = useClosers();
let as: TestAuthorizationServer;
beforeAll(async () => {
  as = await startAs();
});
afterAll(() => as.close());

const LIST = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  result: { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] },
});

describe('an agent that leaves before a filtered MCP response', () => {
  for (const sse of [false, true]) {
    it(`does not crash the proxy (${sse ? 'SSE' : 'JSON'} tools/list)`, async () => {
      const held: ServerResponse[] = [];
      let arrived!: () => void;
      const upstreamGotIt = new Promise<void>((r) => {
        arrived = r;
      });
      const upstream = await startUpstream((_req, res) => {
        held.push(res);
        arrived();
      });
      closers.push(() => upstream.close());
      const proxy = await startProxy({
        as,
        config: {
          routes: [
            {
              name: 'mcp',
              match: { pathPrefix: '/mcp' },
              upstream: upstream.url,
              scopes: ['mcp:tools:read', 'mcp:tools:write'],
              mcp: { filterToolsList: true },
            },
          ],
        },
      });
      closers.push(() => proxy.close());
      const token = await as.userToken('alice', ['mcp:tools:read', 'mcp:tools:write']);
      const headers = {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      };
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

      const controller = new AbortController();
      const gone = request(`${proxy.url}/mcp`, { method: 'POST', headers, body, signal: controller.signal }).catch(
        () => undefined,
      );
      await upstreamGotIt;
      controller.abort();
      await gone;
      // Let the proxy see the agent's socket close before the upstream answers.
      await new Promise((r) => setTimeout(r, 50));
      for (const res of held.splice(0)) {
        if (res.destroyed) continue;
        res.writeHead(200, { 'content-type': sse ? 'text/event-stream' : 'application/json' });
        res.end(sse ? `event: message\ndata: ${LIST}\n\n` : LIST);
      }
      await new Promise((r) => setTimeout(r, 50));

      // Still serving: the next request is answered (and filtered) as usual.
      const next = request(`${proxy.url}/mcp`, { method: 'POST', headers, body });
      // Wait for the request itself (a fixed sleep lost the race on a loaded machine).
      await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0);
      for (const res of held.splice(0)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(LIST);
      }
      const res = await next;
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(await res.body.text())).toMatchObject({ result: { tools: [{ name: 'echo' }] } });
    });
  }
});
