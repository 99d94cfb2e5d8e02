import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AuthorizationServer, type DevClient, startAuthorizationServer } from '../../src/dev/authorization-server.js';

export const CLIENT_ID = 'agent-service';
export const CLIENT_SECRET = 'test-secret with space+and:colon~';

export interface TestAuthorizationServer extends AuthorizationServer {
  /** A file holding CLIENT_SECRET, for `clientSecretFile`. */
  readonly secretFile: string;
  /** A user token for `sub` with `scope`, 1 h by default. */
  userToken(sub: string, scope: string[], expiresInSeconds?: number): Promise<string>;
}

/** A real oidc-provider authorization server with the token-exchange grant, on port 0. */
export async function startAs(options: {
  accessTokenTtlSeconds?: number;
  clients?: DevClient[];
  tokenEndpointAuthMethod?: DevClient['tokenEndpointAuthMethod'];
} = {}): Promise<TestAuthorizationServer> {
  const as = await startAuthorizationServer({
    clients: options.clients ?? [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        tokenEndpointAuthMethod: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
      },
    ],
    ...(options.accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds: options.accessTokenTtlSeconds }),
  });
  const dir = mkdtempSync(join(tmpdir(), 'dp-as-'));
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`);
  return Object.assign(as, {
    secretFile,
    userToken: (sub: string, scope: string[], expiresInSeconds = 3600) =>
      as.issueSubjectToken({ sub, scope, audience: CLIENT_ID, expiresInSeconds }),
  });
}
