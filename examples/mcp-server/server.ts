/**
 * An MCP server behind delegate-proxy, built with the official SDK (Streamable HTTP), that checks
 * the delegated token itself with the guard: defence in depth, so a request that reaches it without
 * the proxy (or with a token for another server) is refused too.
 *
 * In your own project import the guard from the package: `import { createGuard } from 'delegate-proxy/guard'`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { type Guard, type GuardClaims, GuardError, scopesOf } from '../../src/guard/index.js';

/** What each tool needs; keep in step with the proxy route's `mcp.toolScopes`. */
export const TOOL_SCOPES: Readonly<Record<string, readonly string[]>> = {
  read_file: ['mcp:tools:write'],
  delete_file: ['mcp:tools:write', 'files:delete'],
};

/** The handler's view of a tool call's auth: the claims the HTTP layer verified. */
interface ToolExtra {
  readonly authInfo?: AuthInfo | undefined;
}

function claimsOf(extra: ToolExtra): GuardClaims {
  const claims = extra.authInfo?.extra?.claims;
  // The HTTP layer verified every request; a call without claims is a wiring bug, refuse it.
  if (claims === undefined) throw new GuardError('invalid_token', 'no verified token');
  return claims as GuardClaims;
}

/** Builds one McpServer (one per session) whose tools each check their own scopes. */
export function createFilesServer(guard: Guard, files: Map<string, string>): McpServer {
  const server = new McpServer({ name: 'example-files', version: '1.0.0' });
  server.registerTool(
    'read_file',
    { description: 'Read a file', inputSchema: { path: z.string() } },
    async ({ path }, extra) => {
      guard.requireScopes(claimsOf(extra), TOOL_SCOPES.read_file!);
      const text = files.get(path);
      if (text === undefined) return { isError: true, content: [{ type: 'text', text: `no such file: ${path}` }] };
      return { content: [{ type: 'text', text }] };
    },
  );
  server.registerTool(
    'delete_file',
    { description: 'Delete a file', inputSchema: { path: z.string() } },
    async ({ path }, extra) => {
      guard.requireScopes(claimsOf(extra), TOOL_SCOPES.delete_file!);
      const existed = files.delete(path);
      return { content: [{ type: 'text', text: existed ? `deleted ${path}` : `no such file: ${path}` }] };
    },
  );
  return server;
}

export interface ExampleServerOptions {
  readonly guard: Guard;
  /** Answer POSTs with `application/json` instead of `text/event-stream`. Default false. */
  readonly enableJsonResponse?: boolean;
  /** Builds the McpServer for a new session. Default: {@link createFilesServer}. */
  readonly createMcpServer?: () => McpServer;
  readonly host?: string;
  readonly port?: number;
}

export interface ExampleServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

function refuse(res: ServerResponse, err: GuardError): void {
  res.writeHead(err.status, { 'content-type': 'application/json', 'www-authenticate': err.wwwAuthenticate });
  res.end(JSON.stringify({ error: err.code, error_description: err.message }));
}

function jsonRpcFailure(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } }));
}

/** The HTTP side: verify every request, keep one transport per session bound to its user. */
export function createMcpHttpHandler(
  options: ExampleServerOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const files = new Map([['notes.txt', 'hello from the example server']]);
  const build = options.createMcpServer ?? (() => createFilesServer(options.guard, files));
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; sub: string | undefined }>();
  return async (req, res) => {
    let claims: GuardClaims;
    try {
      claims = await options.guard.verify(req.headers.authorization);
    } catch (err) {
      if (err instanceof GuardError) return refuse(res, err);
      throw err;
    }
    (req as IncomingMessage & { auth?: AuthInfo }).auth = {
      token: (req.headers.authorization ?? '').replace(/^Bearer +/i, ''),
      clientId: typeof claims.client_id === 'string' ? claims.client_id : '',
      scopes: [...scopesOf(claims)],
      ...(claims.exp === undefined ? {} : { expiresAt: claims.exp }),
      extra: { claims },
    };
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId);
      // A session belongs to the user who opened it (MCP security best practices: session hijacking).
      if (session === undefined || session.sub !== claims.sub) return jsonRpcFailure(res, 404, 'Session not found');
      return session.transport.handleRequest(req, res);
    }
    if (req.method !== 'POST') return jsonRpcFailure(res, 400, 'No session');
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.enableJsonResponse ?? false,
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, sub: claims.sub });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await build().connect(transport);
    await transport.handleRequest(req, res);
  };
}

/** Starts the example server (port 0 by default). */
export async function startExampleMcpServer(options: ExampleServerOptions): Promise<ExampleServer> {
  const handle = createMcpHttpHandler(options);
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) jsonRpcFailure(res, 500, 'Internal error');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
