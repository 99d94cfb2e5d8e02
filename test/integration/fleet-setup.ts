import { request } from 'undici';
import { type ProxyProcess, startProxyProcess } from '../helpers/proxy-process.js';
import { AUDIENCE, revocationConfig, SSF_AUTHORIZATION } from '../helpers/revocation-config.js';
import { startTransmitter, type Transmitter } from '../helpers/ssf-transmitter.js';
import { CLIENT_ID, startAs, type TestAuthorizationServer } from '../helpers/start-as.js';
import { redisServerPath, startRedis, type TestRedis } from '../helpers/start-redis.js';
import { startUpstream, type TestUpstream } from '../helpers/start-upstream.js';

export { admin } from './revocation-setup.js';

/** redis-server, or undefined outside CI when it is missing (the suites then skip; in CI they fail). */
export const REDIS_SERVER = redisServerPath();

export interface FleetSetup {
  readonly redis: TestRedis;
  readonly as: TestAuthorizationServer;
  readonly upstream: TestUpstream;
  readonly tx: Transmitter;
  readonly dir: string;
  /** The config of a fleet proxy named `name`; `extra` is merged over the top level. */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  start(name: string, extra?: Record<string, unknown>): Promise<ProxyProcess>;
  close(): Promise<void>;
}

/** A real redis-server, AS, upstream and SSF transmitter, and proxies as real processes of the CLI. */
export async function setupFleet(options: { redisArgs?: readonly string[] } = {}): Promise<FleetSetup> {
  if (REDIS_SERVER === undefined) throw new Error('redis-server is not installed');
  const closers: Array<() => Promise<void>> = [];
  const redis = await startRedis(REDIS_SERVER, options.redisArgs);
  closers.push(() => redis.close());
  const as = await startAs();
  closers.push(() => as.close());
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const tx = await startTransmitter({ audience: AUDIENCE, pollAuthorization: SSF_AUTHORIZATION });
  closers.push(() => tx.close());
  const { dir, revocation } = revocationConfig(tx, 'dp-fleet-');
  const config = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
    logging: { level: 'info' },
    revocation,
    fleet: { redis: { url: redis.url, keyPrefix: 'test-fleet:' }, syncTimeoutMs: 2_000 },
    routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: upstream.url, scopes: ['documents:read'] }],
    ...extra,
  });
  const processes: ProxyProcess[] = [];
  return {
    redis,
    as,
    upstream,
    tx,
    dir,
    config,
    async start(name, extra) {
      const p = await startProxyProcess(dir, name, config(extra));
      processes.push(p);
      return p;
    },
    async close() {
      await Promise.all(processes.map((p) => p.kill()));
      while (closers.length > 0) await closers.pop()?.();
    },
  };
}

export async function status(url: string, token: string): Promise<number> {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } });
  await res.body.dump();
  return res.statusCode;
}

export async function readyz(adminUrl: string): Promise<{ status: number; body: string }> {
  const res = await request(`${adminUrl}/readyz`);
  return { status: res.statusCode, body: await res.body.text() };
}

/** Polls `check` every 10 ms until it is true; resolves with the ms it took, rejects after `timeoutMs`. */
export async function within(timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await check()) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
