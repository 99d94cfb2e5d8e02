import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Transmitter } from './ssf-transmitter.js';

export const ADMIN_TOKEN = 'admin-0123456789abcdef0123456789abcdef';
export const SSF_AUTHORIZATION = 'Bearer ssf-stream-secret-4f1e2d';
export const AUDIENCE = 'https://delegate-proxy.test';

/**
 * The `revocation` block of a proxy config that trusts `tx`: the admin token and the SSF poll
 * authorization are written to files in a fresh temp dir (`prefix` names it), as the config reads
 * secrets only from files. `ssf` is merged over `revocation.ssf`.
 */
export function revocationConfig(
  tx: Transmitter,
  prefix: string,
  ssf: Record<string, unknown> = {},
): { dir: string; revocation: Record<string, unknown> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'admin-token'), `${ADMIN_TOKEN}\n`);
  writeFileSync(join(dir, 'ssf-authorization'), `${SSF_AUTHORIZATION}\n`);
  return {
    dir,
    revocation: {
      adminTokenFile: join(dir, 'admin-token'),
      ssf: {
        issuer: tx.issuer,
        jwksUri: tx.jwksUri,
        audience: AUDIENCE,
        authorizationHeaderFile: join(dir, 'ssf-authorization'),
        ...ssf,
      },
    },
  };
}
