import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuthorizationServer,
  type DevClient,
  startAuthorizationServer,
} from '../../src/dev/authorization-server.js';

export const CLIENT_ID = 'agent-service';
export const CLIENT_SECRET = 'test-secret with space+and:colon~';

/**
 * How the token endpoint (`/token`, every method) misbehaves; change it at any time. `ok` lets the
 * real provider answer; `unavailable` answers 503; `hang` never answers (the connection stays open
 * until the client gives up or the AS closes); `garbage` answers 200 with a body that is not JSON.
 */
export type AsFaultMode = 'ok' | 'unavailable' | 'hang' | 'garbage';

export interface AsFaults {
  mode: AsFaultMode;
  /** Delay before the token endpoint's answer (any mode but `hang`). */
  delayMs: number;
  /** Requests to the token endpoint received so far (all modes). */
  readonly received: number;
}

export interface TestAuthorizationServer extends AuthorizationServer {
  /** A file holding CLIENT_SECRET, for `clientSecretFile`. */
  readonly secretFile: string;
  /** Fault injection on the token endpoint; default `{ mode: 'ok', delayMs: 0 }` (no change). */
  readonly faults: AsFaults;
  /** A user token for `sub` with `scope`, 1 h by default. */
  userToken(sub: string, scope: string[], expiresInSeconds?: number): Promise<string>;
}

/** A real oidc-provider authorization server with the token-exchange grant, on port 0. */
export async function startAs(
  options: {
    accessTokenTtlSeconds?: number;
    clients?: DevClient[];
    tokenEndpointAuthMethod?: DevClient['tokenEndpointAuthMethod'];
    delayMs?: number;
  } = {},
): Promise<TestAuthorizationServer> {
  let received = 0;
  const faults: AsFaults = {
    mode: 'ok',
    delayMs: options.delayMs ?? 0,
    get received() {
      return received;
    },
  };
  const intercept = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    if (!req.url?.startsWith('/token')) {
      next();
      return;
    }
    received += 1;
    const mode = faults.mode;
    if (mode === 'hang') return;
    const answer = () => {
      if (mode === 'ok') next();
      else if (mode === 'unavailable') {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":"temporarily_unavailable"}');
      } else {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html>maintenance</html>');
      }
    };
    if (faults.delayMs > 0) setTimeout(answer, faults.delayMs);
    else answer();
  };
  const as = await startAuthorizationServer({
    clients: options.clients ?? [
      {
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        tokenEndpointAuthMethod: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
      },
    ],
    intercept,
    ...(options.accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds: options.accessTokenTtlSeconds }),
  });
  const dir = mkdtempSync(join(tmpdir(), 'dp-as-'));
  const secretFile = join(dir, 'client-secret');
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`);
  return Object.assign(as, {
    secretFile,
    faults,
    userToken: (sub: string, scope: string[], expiresInSeconds = 3600) =>
      as.issueSubjectToken({ sub, scope, audience: CLIENT_ID, expiresInSeconds }),
  });
}
