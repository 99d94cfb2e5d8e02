import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createProxy, type DelegateProxy } from '../app.js';
import type { ResolvedConfig } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { type AuthorizationServer, startAuthorizationServer } from './authorization-server.js';
import { type EchoUpstream, startEchoUpstream } from './echo-upstream.js';

export interface DevSetupOptions {
  /** Where the proxy and admin listeners bind; 127.0.0.1 unless DELEGATE_PROXY_DEV_HOST says otherwise. */
  readonly host: string;
  readonly proxyPort: number;
  readonly adminPort: number;
  readonly asPort: number;
  readonly upstreamPort: number;
  readonly logger?: Logger;
}

export interface DevSetup {
  readonly proxy: DelegateProxy;
  readonly as: AuthorizationServer;
  readonly upstream: EchoUpstream;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  /** A user token (1 h) the agent would hold; for trying the proxy out. */
  readonly userToken: string;
  readonly curl: string;
  close(): Promise<void>;
}

export const DEV_CLIENT_ID = 'delegate-proxy-dev';

/**
 * The `--dev` setup: a real local authorization server with a token-exchange grant, an upstream that
 * echoes what it received, and the proxy wired to them. For trying it out only: the AS and its
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
    ],
  });
  const config: ResolvedConfig = { ...parsed, secrets: { clientSecret } };
  const logger = options.logger ?? createLogger({ level: 'info' });
  const proxy = createProxy(config, { logger });
  const started = await proxy.start();
  const userToken = await as.issueSubjectToken({
    sub: 'alice',
    scope: ['documents:read', 'documents:write', 'mcp:tools:read'],
    audience: DEV_CLIENT_ID,
    expiresInSeconds: 3600,
  });
  const shown = options.host === '0.0.0.0' ? started.url.replace('0.0.0.0', '127.0.0.1') : started.url;
  const curl = `curl -s -H "Authorization: Bearer ${userToken}" ${shown}/echo/hello`;
  return {
    proxy,
    as,
    upstream,
    proxyUrl: started.url,
    adminUrl: started.adminUrl,
    userToken,
    curl,
    async close() {
      await proxy.close();
      await Promise.all([as.close(), upstream.close()]);
    },
  };
}
