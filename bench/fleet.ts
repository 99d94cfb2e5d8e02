/**
 * Fleet mode (docs/fleet.md), measured with real processes of the built CLI (`npm run build` first)
 * and a real `redis-server`:
 *
 * 1. Fan-out: FLEET_PROXIES [20] proxies share one Redis; FLEET_EVENTS [50] revocations are posted
 *    to the admin API of a proxy picked in turn, one every FLEET_GAP_MS [200] ms. For every other
 *    proxy, accept→applied is its audit line's time minus the accepting proxy's audit line's time
 *    (same host clock, 1 ms resolution). Prints p50/p99/max per proxy and overall.
 * 2. Memory: resident memory after start, FLEET_SCRAPES [100] scrapes of /metrics and FLEET_IDLE_MS
 *    [15000] ms idle (V8's memory reducer has had its rounds, as in process-memory.ts), the same config
 *    with and without `fleet`, FLEET_ROUNDS [3] interleaved rounds;
 *    median and per-round difference.
 *
 * Run: npm run build && node --import tsx bench/fleet.ts
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../test/helpers/free-port.js';

const env = process.env;
const PROXIES = Number(env.FLEET_PROXIES ?? 20);
const EVENTS = Number(env.FLEET_EVENTS ?? 50);
const GAP_MS = Number(env.FLEET_GAP_MS ?? 200);
const ROUNDS = Number(env.FLEET_ROUNDS ?? 3);
const IDLE_MS = Number(env.FLEET_IDLE_MS ?? 15_000);
const WARM_SCRAPES = Number(env.FLEET_SCRAPES ?? 100);
const BIN = fileURLToPath(new URL('../bin/delegate-proxy.js', import.meta.url));
const ADMIN_TOKEN = 'bench-admin-0123456789abcdef0123456789';

interface Proxy {
  readonly name: string;
  readonly pid: number;
  readonly adminUrl: string;
  readonly logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startRedis(): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const child = spawn('redis-server', [
    '--port',
    String(port),
    '--save',
    '',
    '--appendonly',
    'no',
    '--bind',
    '127.0.0.1',
  ]);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.on('exit', () => reject(new Error(`redis-server exited: ${out}`)));
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

function startProxy(dir: string, name: string, config: Record<string, unknown>): Promise<Proxy> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(config));
  // The image's flags (Dockerfile ENTRYPOINT).
  const child: ChildProcess = spawn(
    process.execPath,
    ['--enable-source-maps', '--max-semi-space-size=16', BIN, '--config', file],
    { env: { ...env, POD_NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const logs: Array<Record<string, unknown>> = [];
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          logs.push(parsed);
          if (parsed.msg === 'delegate-proxy started') {
            resolve({
              name,
              pid: child.pid!,
              adminUrl: String(parsed.admin),
              logs,
              stop: () =>
                new Promise((done) => {
                  child.once('exit', () => done());
                  child.kill('SIGKILL');
                }),
            });
          }
        } catch {
          // not a log line
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? Number.NaN);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function baseConfig(dir: string): Record<string, unknown> {
  writeFileSync(join(dir, 'client-secret'), 'bench-secret\n');
  writeFileSync(join(dir, 'admin-token'), `${ADMIN_TOKEN}\n`);
  return {
    listen: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    logging: { level: 'info' },
    // Nothing listens there: the fleet does not need the AS; /readyz says so, which changes nothing here.
    authorizationServer: {
      tokenEndpoint: 'http://127.0.0.1:9/token',
      clientId: 'bench',
      clientSecretFile: join(dir, 'client-secret'),
    },
    revocation: { adminTokenFile: join(dir, 'admin-token') },
    routes: [{ name: 'docs', match: { pathPrefix: '/docs' }, upstream: 'http://127.0.0.1:9' }],
  };
}

async function revoke(adminUrl: string, sub: string): Promise<void> {
  const res = await request(`${adminUrl}/revocations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sub }),
  });
  const body = await res.body.text();
  if (res.statusCode !== 200 || !body.includes('"published"')) throw new Error(`revoke: ${res.statusCode} ${body}`);
}

async function fanOut(dir: string, redisUrl: string): Promise<void> {
  const config = { ...baseConfig(dir), fleet: { redis: { url: redisUrl, keyPrefix: 'bench:' } } };
  const proxies = await Promise.all(Array.from({ length: PROXIES }, (_, i) => startProxy(dir, `pod-${i}`, config)));
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    for (let i = 0; i < EVENTS; i++) {
      await revoke(proxies[i % PROXIES]!.adminUrl, `user-${i}`);
      await new Promise((r) => setTimeout(r, GAP_MS));
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const acceptedAt = new Map<string, number>();
    for (const p of proxies) {
      for (const l of p.logs) {
        if (l.audit === 'revocation' && l.fromPod === undefined)
          acceptedAt.set(String(l.sub), Date.parse(String(l.time)));
      }
    }
    const all: number[] = [];
    const rows: string[] = [];
    let missing = 0;
    for (const p of proxies) {
      const applied = new Map<string, number>();
      for (const l of p.logs) {
        if (l.audit === 'revocation' && l.fromPod !== undefined) applied.set(String(l.sub), Date.parse(String(l.time)));
      }
      const ms: number[] = [];
      for (let i = 0; i < EVENTS; i++) {
        if (proxies[i % PROXIES] === p) continue;
        const sub = `user-${i}`;
        const at = applied.get(sub);
        if (at === undefined) {
          missing++;
          continue;
        }
        ms.push(at - acceptedAt.get(sub)!);
      }
      ms.sort((a, b) => a - b);
      all.push(...ms);
      rows.push(`| ${p.name} | ${ms.length} | ${quantile(ms, 0.5)} | ${quantile(ms, 0.99)} | ${ms.at(-1)} |`);
    }
    all.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        kind: 'fleet-fan-out',
        proxies: PROXIES,
        events: EVENTS,
        samples: all.length,
        missing,
        p50Ms: quantile(all, 0.5),
        p99Ms: quantile(all, 0.99),
        maxMs: all.at(-1),
      }),
    );
    console.log('\n| proxy | applied | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|');
    console.log(rows.join('\n'));
    console.log(
      `| **all** | ${all.length} (missing ${missing}) | **${quantile(all, 0.5)}** | **${quantile(all, 0.99)}** | ${all.at(-1)} |\n`,
    );
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
  }
}

async function memory(dir: string, redisUrl: string): Promise<void> {
  const off = baseConfig(dir);
  const on = { ...off, fleet: { redis: { url: redisUrl, keyPrefix: 'bench-memory:' } } };
  const results: Array<{ off: number; on: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    const r = { off: 0, on: 0 };
    for (const [name, config] of [
      ['off', off],
      ['on', on],
    ] as const) {
      const p = await startProxy(dir, `memory-${name}`, config);
      // A few scrapes of /metrics: enough allocation for the young generation's first collections in
      // both, which touch its pages (several MB of RSS). Without them the reading depends on whether
      // the start alone happened to cross that threshold, not on what is kept.
      for (let i = 0; i < WARM_SCRAPES; i++) await (await request(`${p.adminUrl}/metrics`)).body.text();
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
      if (name === 'on') {
        const scrape = await (await request(`${p.adminUrl}/metrics`)).body.text();
        if (!/^delegate_proxy_fleet_connected 1$/m.test(scrape)) throw new Error('fleet on: not connected to Redis');
      }
      r[name] = rssKiB(p.pid);
      await p.stop();
    }
    results.push(r);
    console.log(JSON.stringify({ kind: 'fleet-memory', round, offKiB: r.off, onKiB: r.on, diffKiB: r.on - r.off }));
  }
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  console.log(
    `\nRSS after start and ${WARM_SCRAPES} scrapes (MiB, median of ${ROUNDS}): fleet off ${mib(med(results.map((r) => r.off)))}, on ${mib(med(results.map((r) => r.on)))}; per-round on - off: ${results.map((r) => mib(r.on - r.off)).join(', ')}`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'dp-bench-fleet-'));
execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' });
const redis = await startRedis();
try {
  if (env.FLEET_SKIP !== 'fan-out') await fanOut(dir, redis.url);
  if (env.FLEET_SKIP !== 'memory') await memory(dir, redis.url);
} finally {
  redis.stop();
}
