import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxyProcess } from '../helpers/proxy-process.js';
import { admin, type FleetSetup, REDIS_SERVER, setupFleet, status, within } from './fleet-setup.js';

// What ships: bin/delegate-proxy.js on dist/ (built by `npm ci` through `prepare`), ioredis from
// the package as the image has it, with the image's Node flags.
describe.skipIf(REDIS_SERVER === undefined)('fleet from the build', () => {
  let f: FleetSetup;

  beforeAll(async () => {
    f = await setupFleet();
  }, 60_000);

  afterAll(async () => {
    await f?.close();
  });

  it('a built proxy connects and shares a revocation with a proxy from the sources', async () => {
    const built = await startProxyProcess(f.dir, 'pod-built', f.config(), {}, 'built');
    const source = await f.start('pod-source');
    try {
      const scrape = await (await request(`${built.adminUrl}/metrics`)).body.text();
      expect(scrape).toMatch(/^delegate_proxy_fleet_connected 1$/m);
      const alice = await f.as.userToken('alice', ['documents:read']);
      expect((await admin(built.adminUrl, 'POST', { sub: 'alice' })).json).toEqual({
        evicted: 0,
        closedStreams: 0,
        fleet: 'published',
      });
      await within(1_000, async () => (await status(`${source.url}/docs/x`, alice)) === 401);
    } finally {
      await built.kill();
    }
  }, 60_000);
});
