import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load.js';
import { configProblems } from '../helpers/config-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'dp-revocation-config-'));
const secretFile = join(dir, 'secret');
const adminToken = join(dir, 'admin-token');
const shortToken = join(dir, 'short-token');
const ssfAuth = join(dir, 'ssf-authorization');
writeFileSync(secretFile, 's3cret\n');
writeFileSync(adminToken, `${'a'.repeat(40)}\n`);
writeFileSync(shortToken, 'short\n');
writeFileSync(ssfAuth, 'Bearer stream-secret\n');

const base = {
  authorizationServer: { tokenEndpoint: 'https://as.example/token', clientId: 'agent', clientSecretFile: secretFile },
  routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: 'https://docs.internal' }],
};

describe('revocation config', () => {
  it('is off by default', () => {
    expect(resolveConfig(base).revocation).toBeUndefined();
  });

  it('applies the documented defaults and reads both secrets from their files', () => {
    const c = resolveConfig({
      ...base,
      revocation: {
        adminTokenFile: adminToken,
        ssf: {
          issuer: 'https://idp.example.com',
          audience: 'https://delegate-proxy.example',
          authorizationHeaderFile: ssfAuth,
          poll: { url: 'https://idp.example.com/ssf/poll' },
        },
      },
    });
    expect(c.revocation).toEqual({
      adminTokenFile: adminToken,
      retainSeconds: 86_400,
      maxEntries: 100_000,
      ssf: {
        issuer: 'https://idp.example.com',
        audience: 'https://delegate-proxy.example',
        authorizationHeaderFile: ssfAuth,
        maxAgeSeconds: 300,
        poll: { url: 'https://idp.example.com/ssf/poll', intervalSeconds: 5, maxEvents: 100 },
      },
    });
    expect(c.secrets.revocationAdminToken).toBe('a'.repeat(40));
    expect(c.secrets.ssfAuthorization).toBe('Bearer stream-secret');
  });

  it('names every problem with its path: unknown keys, short admin secret, missing files, bad URLs', () => {
    expect(
      configProblems({
        ...base,
        revocation: {
          adminTokenFile: shortToken,
          extra: 1,
          ssf: { issuer: 'not a url', audience: 'a', authorizationHeaderFile: join(dir, 'missing') },
        },
      }),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^revocation: .*extra/),
        expect.stringMatching(/^revocation\.ssf\.issuer: /),
      ]),
    );
    expect(configProblems({ ...base, revocation: { adminTokenFile: shortToken } })).toEqual([
      'revocation.adminTokenFile: must hold at least 32 characters (use random bytes)',
    ]);
    expect(
      configProblems({
        ...base,
        revocation: {
          adminTokenFile: adminToken,
          ssf: { issuer: 'https://idp', audience: 'a', authorizationHeaderFile: join(dir, 'missing') },
        },
      }),
    ).toEqual([`revocation.ssf.authorizationHeaderFile: cannot read ${join(dir, 'missing')} (ENOENT)`]);
    expect(configProblems({ ...base, revocation: {} })).toEqual([
      'revocation.adminTokenFile: Invalid input: expected string, received undefined',
    ]);
  });
});
