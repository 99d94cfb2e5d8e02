import { createServer } from 'node:http';
import { localhostHostValidation, type NodeIncomingMessageLike, toNodeHandler } from '@modelcontextprotocol/node';
import { type AuthInfo, createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { decodeJwt, type JWTPayload } from 'jose';
import { z } from 'zod';
import { closeServer, listen, urlOf } from '../server/listen.js';

/** A running demo MCP server; its endpoint is `${url}/mcp`. */
export interface DevMcpUpstream {
  readonly url: string;
  close(): Promise<void>;
}

/** What `whoami` shows of the token the server received: who, for what, via whom. Never the token. */
const SHOWN_CLAIMS = ['sub', 'scope', 'aud', 'client_id', 'act', 'exp'] as const;

function claimsOf(authorization: string | string[] | undefined): JWTPayload | undefined {
  if (typeof authorization !== 'string' || !/^Bearer /i.test(authorization)) return undefined;
  try {
    return decodeJwt(authorization.slice(7).trim());
  } catch {
    return undefined;
  }
}

/** The claims, passed to the tools as the SDK's `ctx.http.authInfo` (the raw token is not kept). */
function authInfo(claims: JWTPayload): AuthInfo {
  return { token: '', clientId: String(claims.client_id ?? ''), scopes: [], extra: { claims } };
}

function buildServer(): McpServer {
  const server = new McpServer({ name: 'delegate-proxy-dev-mcp', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Shows the delegated token this server received (its claims, never the token)' },
    (ctx) => {
      const claims = ctx.http?.authInfo?.extra?.claims as JWTPayload | undefined;
      const shown = Object.fromEntries(
        SHOWN_CLAIMS.flatMap((k) => (claims?.[k] === undefined ? [] : [[k, claims[k]]])),
      );
      return { content: [{ type: 'text', text: JSON.stringify(shown) }] };
    },
  );
  server.registerTool(
    'echo',
    { description: 'Answers with the text it is given', inputSchema: z.object({ text: z.string() }) },
    ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

/**
 * The `--dev` MCP server (docs/mcp.md "Try it"): the official SDK v2 on `node:http`, serving
 * 2026-07-28 (stateless, per-request `_meta`) and 2025-era traffic on one endpoint. Like the echo
 * upstream it decodes, without verifying, the delegated token it receives, to show it: a real
 * server verifies it (the guard, `delegate-proxy/guard`). Loaded only by `--dev`.
 */
export async function startDevMcpUpstream(options: { host?: string; port?: number } = {}): Promise<DevMcpUpstream> {
  // Dual-era: without `legacy: 'reject'` the same tools answer 2025-era requests statelessly.
  const mcp = toNodeHandler(createMcpHandler(() => buildServer()));
  // The proxy in front checks Host and Origin; this server checks Host itself too (defence in depth).
  const validHost = localhostHostValidation();
  const server = createServer((req, res) => {
    if (!validHost(req, res)) return;
    if (req.url !== '/mcp' && !req.url?.startsWith('/mcp?')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    // Node's IncomingMessage types `method` as possibly undefined; the adapter's shape does not.
    const incoming = req as unknown as NodeIncomingMessageLike;
    const claims = claimsOf(req.headers.authorization);
    if (claims !== undefined) incoming.auth = authInfo(claims);
    mcp(incoming, res).catch(() => res.destroy());
  });
  const url = urlOf(await listen(server, options.host ?? '127.0.0.1', options.port ?? 0));
  return { url, close: () => closeServer(server) };
}
