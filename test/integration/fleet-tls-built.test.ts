import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { requireCommand } from '../helpers/require-tool.js';
import { admin, type FleetSetup, REDIS_SERVER, setupFleet, status, within } from './fleet-setup.js';

// What ships, over TLS: the bundle loads node:tls for ioredis only when a `rediss://` URL connects
// (scripts/bundle.mjs); the server's certificate is checked against `fleet.redis.tls.caFile`.
const OPENSSL = requireCommand('openssl');

describe.skipIf(REDIS_SERVER === undefined || !OPENSSL)('fleet from the build, Redis over TLS', () => {
  const certs = mkdtempSync(join(tmpdir(), 'dp-redis-tls-'));
  const [key, cert] = [join(certs, 'key.pem'), join(certs, 'cert.pem')];
  let f: FleetSetup;
  let tlsPort: number;

  beforeAll(async () => {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
        ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
      ],
      { stdio: 'ignore' },
    );
    tlsPort = await freePort();
    f = await setupFleet({
      redisArgs: [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        cert,
        '--tls-key-file',
        key,
        '--tls-auth-clients',
        'no',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await f?.close();
    rmSync(certs, { recursive: true, force: true });
  });

  it('a built proxy connects with rediss:// and its CA file, and shares a revocation', async () => {
    const fleet = { redis: { url: `rediss://127.0.0.1:${tlsPort}`, keyPrefix: 'test-fleet:', tls: { caFile: cert } } };
    const built = await startProxyProcess(f.dir, 'pod-tls', f.config({ fleet }), {}, 'built');
    const plain = await f.start('pod-plain');
    try {
      const scrape = await (await request(`${built.adminUrl}/metrics`)).body.text();
      expect(scrape).toMatch(/^delegate_proxy_fleet_connected 1$/m);
      const alice = await f.as.userToken('alice', ['documents:read']);
      expect((await admin(built.adminUrl, 'POST', { sub: 'alice' })).json).toMatchObject({ fleet: 'published' });
      await within(1_000, async () => (await status(`${plain.url}/docs/x`, alice)) === 401);
    } finally {
      await built.kill();
    }
  }, 60_000);
});
