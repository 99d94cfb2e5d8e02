import { writeFileSync } from 'node:fs';
import { startAuthorizationServer } from '../../src/dev/authorization-server.js';
import { childOptions, serve } from './child.js';

export interface AsOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly accessTokenTtlSeconds: number;
}

export interface IssueRequest {
  readonly count: number;
  readonly prefix: string;
  readonly scope: string[];
  readonly expiresInSeconds: number;
  /** Tokens are written here, one per line (they are test data for the load tools). */
  readonly file: string;
}

// The real dev authorization server (oidc-provider with the RFC 8693 grant), as the tests use it.
const options = childOptions<AsOptions>();
const as = await startAuthorizationServer({
  clients: [
    { clientId: options.clientId, clientSecret: options.clientSecret, tokenEndpointAuthMethod: 'client_secret_basic' },
  ],
  accessTokenTtlSeconds: options.accessTokenTtlSeconds,
});

async function issue(arg: unknown): Promise<{ count: number; bytes: number }> {
  const req = arg as IssueRequest;
  const tokens: string[] = new Array(req.count);
  const batch = 64;
  for (let i = 0; i < req.count; i += batch) {
    const jobs: Promise<void>[] = [];
    for (let j = i; j < Math.min(req.count, i + batch); j++) {
      jobs.push(
        as
          .issueSubjectToken({
            sub: `${req.prefix}${j}`,
            scope: req.scope,
            audience: options.clientId,
            expiresInSeconds: req.expiresInSeconds,
          })
          .then((t) => {
            tokens[j] = t;
          }),
      );
    }
    await Promise.all(jobs);
  }
  writeFileSync(req.file, `${tokens.join('\n')}\n`);
  return { count: tokens.length, bytes: tokens[0]?.length ?? 0 };
}

serve(
  { url: as.url, tokenEndpoint: as.tokenEndpoint },
  {
    issue,
    exchanges: () => ({
      total: as.exchanges.length,
      issued: as.exchanges.filter((e) => e.outcome === 'issued').length,
    }),
  },
  () => as.close(),
);
