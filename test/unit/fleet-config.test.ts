import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fleetSchema } from '../../src/config/fleet-schema.js';
import { resolveConfig } from '../../src/config/load.js';
import { configProblems } from '../helpers/config-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'dp-fleet-config-'));
const secretFile = join(dir, 'secret');
const adminToken = join(dir, 'admin-token');
const password = join(dir, 'redis-password');
const ca = join(dir, 'ca.pem');
const notPem = join(dir, 'not-pem');
writeFileSync(secretFile, 's3cret\n');
writeFileSync(adminToken, `${'a'.repeat(40)}\n`);
writeFileSync(password, 'redis-pass-9f8e\n');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
writeFileSync(notPem, 'hello\n');

const base = {
  authorizationServer: { tokenEndpoint: 'https://as.example/token', clientId: 'agent', clientSecretFile: secretFile },
  revocation: { adminTokenFile: adminToken },
  routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: 'https://docs.internal' }],
};

describe('fleet config', () => {
  it('is off by default', () => {
    const c = resolveConfig(base);
    expect(c.fleet).toBeUndefined();
    expect(c.secrets.fleetRedisPassword).toBeUndefined();
  });

  it('applies the defaults and reads the password and the CA from their files', () => {
    const c = resolveConfig({
      ...base,
      fleet: { redis: { url: 'rediss://redis.infra:6380/0', passwordFile: password, tls: { caFile: ca } } },
    });
    expect(c.fleet).toEqual({
      redis: {
        url: 'rediss://redis.infra:6380/0',
        passwordFile: password,
        tls: { caFile: ca },
        keyPrefix: 'delegate-proxy:',
      },
      syncTimeoutMs: 2_000,
    });
    expect(c.secrets.fleetRedisPassword).toBe('redis-pass-9f8e');
    expect(c.secrets.fleetRedisCa).toContain('BEGIN CERTIFICATE');
  });

  it('names every problem with its path', () => {
    expect(
      configProblems({
        ...base,
        fleet: {
          redis: {
            url: 'redis://:hunter2@redis:6379',
            passwordFile: join(dir, 'missing'),
            tls: { caFile: notPem },
            extra: 1,
          },
          syncTimeoutMs: 5,
        },
      }).sort(),
    ).toEqual(
      [
        'fleet.redis: Unrecognized key: "extra"',
        'fleet.redis.tls: needs a rediss:// url',
        'fleet.redis.url: must not hold a password: use passwordFile',
        'fleet.syncTimeoutMs: Too small: expected number to be >=100',
      ].sort(),
    );
    expect(
      configProblems({
        ...base,
        fleet: { redis: { url: 'redis://redis:6379', passwordFile: join(dir, 'missing'), tls: { caFile: notPem } } },
      }),
    ).toEqual(['fleet.redis.tls: needs a rediss:// url']);
    expect(
      configProblems({
        ...base,
        fleet: { redis: { url: 'rediss://redis:6379', passwordFile: join(dir, 'missing'), tls: { caFile: notPem } } },
      }),
    ).toEqual([
      `fleet.redis.passwordFile: cannot read ${join(dir, 'missing')} (ENOENT)`,
      `fleet.redis.tls.caFile: ${notPem} holds no PEM certificate`,
    ]);
    expect(configProblems({ ...base, fleet: { redis: { url: 'http://redis:6379' } } })).toEqual([
      'fleet.redis.url: must be a redis:// or rediss:// URL',
    ]);
    expect(configProblems({ ...base, fleet: { redis: { url: 'redis://redis:6379/x?db=1' } } }).sort()).toEqual(
      [
        'fleet.redis.url: must not have a query or fragment',
        'fleet.redis.url: the path may only be a database number (e.g. /0)',
      ].sort(),
    );
    expect(configProblems({ ...base, fleet: { redis: { url: 'redis://r', keyPrefix: 'a b' } } })).toEqual([
      'fleet.redis.keyPrefix: letters, digits, _ . : - only (at most 64)',
    ]);
    const { revocation: _, ...withoutRevocation } = base;
    expect(configProblems({ ...withoutRevocation, fleet: { redis: { url: 'redis://r' } } })).toEqual([
      'fleet: shares nothing without revocation or stepUp',
    ]);
  });

  it('describes every key (docs/configuration.md is generated from the descriptions)', () => {
    const json = JSON.stringify(fleetSchema.toJSONSchema({ io: 'input' }));
    for (const key of ['url', 'passwordFile', 'caFile', 'keyPrefix', 'syncTimeoutMs', 'redis', 'tls']) {
      expect(json).toMatch(new RegExp(`"${key}":\\{[^}]*"description"`));
    }
  });
});
