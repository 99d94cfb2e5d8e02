import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILT_BIN, startProxyProcess } from '../helpers/proxy-process.js';
import { admin, type FleetSetup, REDIS_SERVER, setupFleet, status, within } from './fleet-setup.js';

const BUNDLE = join(BUILT_BIN, '../../dist/fleet/ioredis.cjs');

// What ships: dist/ with ioredis bundled into one file (scripts/bundle-ioredis.mjs, docs/fleet.md).
describe.skipIf(REDIS_SERVER === undefined)('fleet from the build (bundled ioredis)', () => {
  let f: FleetSetup;

  beforeAll(async () => {
    f = await setupFleet();
  }, 60_000);

  afterAll(async () => {
    await f?.close();
  });

  it('the build has the bundle, with the license kept', () => {
    expect(existsSync(BUNDLE), 'npm run build makes dist/fleet/ioredis.cjs').toBe(true);
    const text = readFileSync(BUNDLE, 'utf8');
    expect(text.length).toBeGreaterThan(100_000);
    expect(text.slice(0, 20_000)).toMatch(/^ \* ioredis@6\.\d+\.\d+$/m);
    expect(text.slice(0, 20_000)).toContain('MIT License');
  });

  it('a built proxy connects and shares a revocation with a proxy from the sources', async () => {
    const built = await startProxyProcess(f.dir, 'pod-built', f.config(), {}, 'built');
    const source = await f.start('pod-source');
    try {
      const scrape = await (await request(`${built.adminUrl}/metrics`)).body.text();
      expect(scrape).toMatch(/^delegate_proxy_fleet_connected 1$/m);
      const alice = await f.as.userToken('alice', ['documents:read']);
      expect((await admin(built.adminUrl, 'POST', { sub: 'alice' })).json).toEqual({ evicted: 0, fleet: 'published' });
      await within(1_000, async () => (await status(`${source.url}/docs/x`, alice)) === 401);
    } finally {
      await built.kill();
    }
  }, 60_000);
});
