import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FleetSetup, REDIS_SERVER, readyz, setupFleet, within } from './fleet-setup.js';

const PASSWORD = 'redis-password-7c1e9a0b5d';

// docs/fleet.md "Configuration": the Redis password comes from a file and is never logged.
describe.skipIf(REDIS_SERVER === undefined)('fleet: Redis AUTH from passwordFile', () => {
  let f: FleetSetup;

  beforeAll(async () => {
    f = await setupFleet({ redisArgs: ['--requirepass', PASSWORD] });
    writeFileSync(join(f.dir, 'redis-password'), `${PASSWORD}\n`);
    writeFileSync(join(f.dir, 'wrong-password'), 'not-the-password\n');
  }, 60_000);

  afterAll(async () => {
    await f?.close();
  });

  const withPassword = (file: string) => ({
    fleet: { redis: { url: f.redis.url, keyPrefix: 'auth:', passwordFile: join(f.dir, file) }, syncTimeoutMs: 500 },
  });

  it('connects with the password from its file and never logs it', async () => {
    const p = await f.start('pod-auth', withPassword('redis-password'));
    expect((await readyz(p.adminUrl)).status).toBe(200);
    const metrics = await (await request(`${p.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/^delegate_proxy_fleet_connected 1$/m);
    expect(JSON.stringify(p.logs)).not.toContain(PASSWORD);
  }, 30_000);

  it('a wrong password: not ready, /readyz says why, and no password in any log line', async () => {
    const p = await f.start('pod-wrong', withPassword('wrong-password'));
    const state = await readyz(p.adminUrl);
    expect(state.status).toBe(503);
    expect(state.body).toMatch(/fleet: revocation list not read from Redis yet \(WRONGPASS/);
    await within(2_000, async () => p.logs.some((l) => String(l.msg).startsWith('fleet: Redis unavailable')));
    const logs = JSON.stringify(p.logs);
    expect(logs).not.toContain(PASSWORD);
    expect(logs).not.toContain('not-the-password');
  }, 30_000);

  it('a password in the URL is refused at start, with its path', async () => {
    const url = f.redis.url.replace('redis://', `redis://:${PASSWORD}@`);
    const refused = await f.start('pod-url', { fleet: { redis: { url } } }).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/exited \(1\).*fleet\.redis\.url: must not hold a password: use passwordFile/s);
    expect(refused).not.toContain(PASSWORD);
  }, 30_000);
});
