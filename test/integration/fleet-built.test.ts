import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { opensslAvailable, selfSignedCert } from '../helpers/self-signed-cert.js';
import { admin, type FleetSetup, REDIS_SERVER, setupFleet, status, within } from './fleet-setup.js';

// What ships: bin/delegate-proxy.js on dist/ (built by `npm ci` through `prepare`), ioredis from
// the package as the image has it (its own chunk of the bundle, which loads node:tls only for a
// `rediss://` URL: scripts/bundle.mjs), with the image's Node flags. One redis-server serves both
// plain and TLS ports.
describe.skipIf(REDIS_SERVER === undefined || !opensslAvailable())('fleet from the build', () => {
  const certs = mkdtempSync(join(tmpdir(), 'dp-redis-tls-'));
  let f: FleetSetup;
  let tls: { url: string; caFile: string };

  beforeAll(async () => {
    const { key, cert } = selfSignedCert(certs);
    const tlsPort = await freePort();
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
    tls = { url: `rediss://127.0.0.1:${tlsPort}`, caFile: cert };
  }, 60_000);

  afterAll(async () => {
    await f?.close();
    rmSync(certs, { recursive: true, force: true });
  });

  /** A built proxy with `fleet` (the setup's own unless given) joins and shares a revocation with one from the sources. */
  async function sharesRevocation(name: string, fleet?: Record<string, unknown>): Promise<void> {
    const built = await startProxyProcess(f.dir, name, f.config(fleet && { fleet }), {}, 'built');
    const source = await f.start(`${name}-source`);
    try {
      const scrape = await (await request(`${built.adminUrl}/metrics`)).body.text();
      expect(scrape).toMatch(/^delegate_proxy_fleet_connected 1$/m);
      const alice = await f.as.userToken(`alice-${name}`, ['documents:read']);
      expect((await admin(built.adminUrl, 'POST', { sub: `alice-${name}` })).json).toEqual({
        evicted: 0,
        closedStreams: 0,
        fleet: 'published',
      });
      await within(1_000, async () => (await status(`${source.url}/docs/x`, alice)) === 401);
    } finally {
      await built.kill();
    }
  }

  it('a built proxy connects and shares a revocation with a proxy from the sources', async () => {
    await sharesRevocation('pod-built');
  }, 60_000);

  it('the same over TLS: rediss:// with the server checked against fleet.redis.tls.caFile', async () => {
    await sharesRevocation('pod-tls', {
      redis: { url: tls.url, keyPrefix: 'test-fleet:', tls: { caFile: tls.caFile } },
    });
  }, 60_000);
});
