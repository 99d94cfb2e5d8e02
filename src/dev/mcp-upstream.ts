import { createServer } from 'node:http';
import { localhostHostValidation, type NodeIncomingMessageLike, toNodeHandler } from '@modelcontextprotocol/node';
import { type AuthInfo, createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { createGuard, type Guard, type GuardClaims, GuardError } from '../guard/index.js';
import { closeServer, listen, urlOf } from '../server/listen.js';

/** A running demo MCP server; its endpoint is `${url}/mcp`. */
export interface DevMcpUpstream {
  readonly url: string;
  close(): Promise<void>;
}

/** What `whoami` shows of the token the server received: who, for what, via whom. Never the token. */
const SHOWN_CLAIMS = ['sub', 'scope', 'aud', 'client_id', 'act', 'exp'] as const;

/** The verified claims, passed to the tools as the SDK's `ctx.http.authInfo` (the raw token is not kept). */
function authInfo(claims: GuardClaims): AuthInfo {
  return { token: '', clientId: String(claims.client_id ?? ''), scopes: [], extra: { claims } };
}

function claimsOf(ctx: { http?: { authInfo?: AuthInfo } }): GuardClaims {
  // Every request was verified before the SDK saw it; no claims here is a wiring bug.
  const claims = ctx.http?.authInfo?.extra?.claims as GuardClaims | undefined;
  if (claims === undefined) throw new GuardError('invalid_token', 'no verified token');
  return claims;
}

function buildServer(guard: Guard): McpServer {
  const server = new McpServer({ name: 'delegate-proxy-dev-mcp', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Shows the delegated token this server received (its claims, never the token)' },
    (ctx) => {
      const claims = claimsOf(ctx);
      const shown = Object.fromEntries(SHOWN_CLAIMS.flatMap((k) => (claims[k] === undefined ? [] : [[k, claims[k]]])));
      return { content: [{ type: 'text', text: JSON.stringify(shown) }] };
    },
  );
  server.registerTool(
    'echo',
    { description: 'Answers with the text it is given', inputSchema: z.object({ text: z.string() }) },
    ({ text }, ctx) => {
      // The server checks the scope again (docs/mcp.md "The guard for MCP servers").
      guard.requireScopes(claimsOf(ctx), ['mcp:tools:write']);
      return { content: [{ type: 'text', text }] };
    },
  );
  return server;
}

/**
 * The `--dev` MCP server (docs/mcp.md "Try it"): the official SDK v2 on `node:http`, serving
 * 2026-07-28 (stateless, per-request `_meta`) and 2025-era traffic on one endpoint. It verifies the
 * delegated token of every request with the guard (issuer and JWKS of the dev authorization server,
 * its own URL as audience), as a real MCP server behind the proxy should. Loaded only by `--dev`.
 */
export async function startDevMcpUpstream(options: {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly host?: string;
  readonly port?: number;
}): Promise<DevMcpUpstream> {
  let guard: Guard | undefined;
  // Dual-era: without `legacy: 'reject'` the same tools answer 2025-era requests statelessly.
  const mcp = toNodeHandler(createMcpHandler(() => buildServer(guard as Guard)));
  // The proxy in front checks Host and Origin; this server checks Host itself too (defence in depth).
  const validHost = localhostHostValidation();
  const server = createServer((req, res) => {
    if (!validHost(req, res)) return;
    if (req.url !== '/mcp' && !req.url?.startsWith('/mcp?')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
      return;
    }
    (guard as Guard)
      .verify(req.headers.authorization)
      .then(
        (claims) => {
          // Node's IncomingMessage types `method` as possibly undefined; the adapter's shape does not.
          const incoming = req as unknown as NodeIncomingMessageLike;
          incoming.auth = authInfo(claims);
          return mcp(incoming, res);
        },
        (err: unknown) => {
          const status = err instanceof GuardError ? err.status : 500;
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (err instanceof GuardError) headers['www-authenticate'] = err.wwwAuthenticate;
          res.writeHead(status, headers).end(JSON.stringify({ error: err instanceof GuardError ? err.code : 'error' }));
        },
      )
      .catch(() => res.destroy());
  });
  const url = urlOf(await listen(server, options.host ?? '127.0.0.1', options.port ?? 0));
  // The audience is this server's own URL (the proxy route's `audience`), known once it listens.
  guard = createGuard({ issuer: options.issuer, jwksUri: options.jwksUri, audience: url });
  return { url, close: () => closeServer(server) };
}
