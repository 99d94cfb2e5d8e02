import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createProxy, type DelegateProxy } from '../app.js';
import type { ResolvedConfig } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { type AuthorizationServer, startAuthorizationServer } from './authorization-server.js';
import { type EchoUpstream, startEchoUpstream } from './echo-upstream.js';
import { type DevMcpUpstream, startDevMcpUpstream } from './mcp-upstream.js';

export interface DevSetupOptions {
  /** Where the proxy and admin listeners bind; 127.0.0.1 unless DELEGATE_PROXY_DEV_HOST says otherwise. */
  readonly host: string;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly asPort: number;
  readonly upstreamPort: number;
  /** The demo MCP server (SDK v2, both protocol eras) behind the `/mcp` route. */
  readonly mcpPort: number;
  readonly logger?: Logger;
}

export interface DevSetup {
  readonly proxy: DelegateProxy;
  readonly as: AuthorizationServer;
  readonly upstream: EchoUpstream;
  readonly mcp: DevMcpUpstream;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  /** A user token (1 h) the agent would hold; for trying the proxy out. */
  readonly userToken: string;
  readonly curl: string;
  /** Ready-to-paste requests on the MCP route, one per protocol era; they expect `TOKEN` set to `userToken`. */
  readonly mcpCurls: { readonly modern: string; readonly legacy: string };
  close(): Promise<void>;
}

export const DEV_CLIENT_ID = 'delegate-proxy-dev';

const MCP_READ = 'mcp:tools:read';
const MCP_WRITE = 'mcp:tools:write';

/** The MCP revision whose requests are stateless: `_meta` in the body, mirrored in headers. */
const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';

/**
 * A `tools/call` of the demo server's `whoami`, as curl. A 2026-07-28 request carries its revision
 * and capabilities in `params._meta` and mirrors method and tool name in `Mcp-Method` / `Mcp-Name`
 * (MCP basic/transports, "Request Metadata"); a 2025-era one is a plain JSON-RPC call, served
 * statelessly by the dual-era server.
 */
function mcpCurl(url: string, version: string): string {
  const params: Record<string, unknown> = { name: 'whoami', arguments: {} };
  const headers = [
    'Authorization: Bearer $TOKEN',
    'Content-Type: application/json',
    'Accept: application/json, text/event-stream',
    `MCP-Protocol-Version: ${version}`,
  ];
  if (version === MODERN) {
    params._meta = {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    headers.push('Mcp-Method: tools/call', 'Mcp-Name: whoami');
  }
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params });
  return `curl -s ${url} ${headers.map((h) => `-H "${h}"`).join(' ')} -d '${body}'`;
}

/**
 * The `--dev` setup: a real local authorization server with a token-exchange grant, an upstream that
 * echoes what it received, an MCP server (SDK v2, both protocol eras), and the proxy wired to them. For trying it out only: the AS and its
 * client secret live in this process and vanish with it.
 */
export async function startDevSetup(options: DevSetupOptions): Promise<DevSetup> {
  const clientSecret = randomBytes(24).toString('base64url');
  const as = await startAuthorizationServer({
    host: '127.0.0.1',
    port: options.asPort,
    clients: [{ clientId: DEV_CLIENT_ID, clientSecret, tokenEndpointAuthMethod: 'client_secret_basic' }],
    accessTokenTtlSeconds: 300,
  });
  const upstream = await startEchoUpstream({ host: '127.0.0.1', port: options.upstreamPort });
  const mcp = await startDevMcpUpstream({
    host: '127.0.0.1',
    port: options.mcpPort,
    issuer: as.issuer,
    jwksUri: as.jwksUri,
  });
  const parsed = configSchema.parse({
    listen: `${options.host}:${options.proxyPort}`,
    admin: `${options.host}:${options.adminPort}`,
    // localhost and IP addresses only, also when DELEGATE_PROXY_DEV_HOST=0.0.0.0 (a published container port).
    allowedHosts: [],
    authorizationServer: {
      tokenEndpoint: as.tokenEndpoint,
      clientId: DEV_CLIENT_ID,
      clientAuth: 'client_secret_basic',
      clientSecretFile: '(in memory)',
    },
    logging: { level: 'info' },
    routes: [
      {
        name: 'echo',
        match: { pathPrefix: '/echo' },
        upstream: upstream.url,
        stripPrefix: true,
        scopes: ['documents:read'],
        audience: upstream.url,
      },
      {
        name: 'mcp',
        match: { pathPrefix: '/mcp' },
        upstream: mcp.url,
        scopes: [MCP_READ, MCP_WRITE],
        audience: mcp.url,
        mcp: {},
      },
    ],
  });
  const config: ResolvedConfig = { ...parsed, secrets: { clientSecret } };
  const logger = options.logger ?? createLogger({ level: 'info' });
  const proxy = createProxy(config, { logger });
  const started = await proxy.start();
  const userToken = await as.issueSubjectToken({
    sub: 'alice',
    scope: ['documents:read', 'documents:write', MCP_READ, MCP_WRITE],
    audience: DEV_CLIENT_ID,
    expiresInSeconds: 3600,
  });
  const shown = options.host === '0.0.0.0' ? started.url.replace('0.0.0.0', '127.0.0.1') : started.url;
  const curl = `curl -s -H "Authorization: Bearer ${userToken}" ${shown}/echo/hello`;
  const mcpCurls = { modern: mcpCurl(`${shown}/mcp`, MODERN), legacy: mcpCurl(`${shown}/mcp`, LEGACY) };
  return {
    proxy,
    as,
    upstream,
    mcp,
    proxyUrl: started.url,
    adminUrl: started.adminUrl,
    userToken,
    curl,
    mcpCurls,
    async close() {
      await proxy.close();
      await Promise.all([as.close(), upstream.close(), mcp.close()]);
    },
  };
}
