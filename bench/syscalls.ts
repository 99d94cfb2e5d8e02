/**
 * System calls per request (strace -c on the measured process while wrk drives it): what a
 * configuration costs the kernel, which CPU profiles of the JavaScript do not show. Needs strace.
 *
 *   npm run build && node --import tsx bench/syscalls.ts [seconds]
 *
 * Configurations: the bare undici dispatch forwarder (the engine floor), bare http-proxy and
 * delegate-proxy warm (1 user) and with 10,000 users; with BENCH_BASELINE_DIST, the same proxy
 * from another build too.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, cpuLayout, startChild } from './lib/children.js';
import type { LoadSpec } from './load/result.js';
import { runWrk } from './load/wrk.js';

const seconds = Number(process.argv[2] ?? 5);
const users = Number(process.env.BENCH_USERS ?? 10_000);
const layout = cpuLayout();
const dir = mkdtempSync(join(tmpdir(), 'dp-syscalls-'));
const secretFile = join(dir, 'client-secret');
writeFileSync(secretFile, 'bench-secret\n');
const children: Child[] = [];

function proxyConfig(upstream: string, tokenEndpoint: string): Record<string, unknown> {
  return {
    authorizationServer: { tokenEndpoint, clientId: 'agent-service', clientSecretFile: secretFile },
    cache: { maxTtlSeconds: 3600, refreshAheadSeconds: 30, maxEntries: users * 2 },
    routes: [{ name: 'bench', match: { pathPrefix: '/' }, upstream, scopes: ['bench:read'] }],
    logging: { level: 'info' },
  };
}

/** strace -c -f on `pid` while `load` runs; the summary's rows as { syscall: calls }. */
async function traced(
  pid: number,
  load: () => Promise<{ requests: number }>,
): Promise<{ requests: number; calls: Map<string, number> }> {
  const out = join(dir, `strace-${pid}-${Date.now()}.txt`);
  const strace = spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const { requests } = await load();
  strace.kill('SIGINT');
  await new Promise((r) => strace.once('exit', r));
  const calls = new Map<string, number>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m && m[2] !== 'total') calls.set(m[2] as string, Number(m[1]));
  }
  return { requests, calls };
}

try {
  const rest = { layout, cpus: layout.rest };
  const sut = { layout, cpus: layout.sut };
  const upstream = await startChild('upstream', 'upstream.ts', {}, rest);
  const as = await startChild(
    'as',
    'authorization-server.ts',
    { clientId: 'agent-service', clientSecret: 'bench-secret', accessTokenTtlSeconds: 3600 },
    rest,
  );
  children.push(upstream, as);
  const one = join(dir, 'one.txt');
  const many = join(dir, 'many.txt');
  await as.request('issue', { count: 1, prefix: 'p-', scope: ['bench:read'], expiresInSeconds: 7200, file: one });
  await as.request('issue', { count: users, prefix: 'u-', scope: ['bench:read'], expiresInSeconds: 7200, file: many });
  const token = readFileSync(one, 'utf8').trim();
  const tokenEndpoint = String(as.info.tokenEndpoint);
  const configs: Array<{ name: string; child: Child; spec: Omit<LoadSpec, 'durationS' | 'url'> }> = [];
  const add = async (
    name: string,
    script: string,
    options: unknown,
    spec: Omit<LoadSpec, 'durationS' | 'url'>,
    env?: Record<string, string>,
  ) => {
    const child = await startChild(name, script, options, { ...sut, ...(env ? { env } : {}) });
    children.push(child);
    configs.push({ name, child, spec });
  };
  await add(
    'undici-dispatch',
    'undici-forwarder.ts',
    { upstream: upstream.info.url, mode: 'dispatch' },
    { connections: 16 },
  );
  await add('bare-http-proxy', 'bare-http-proxy.ts', { upstream: upstream.info.url }, { connections: 16 });
  await add(
    'delegate-warm',
    'delegate-proxy.ts',
    { config: proxyConfig(upstream.info.url, tokenEndpoint) },
    { connections: 16, token },
  );
  await add(
    'delegate-users',
    'delegate-proxy.ts',
    { config: proxyConfig(upstream.info.url, tokenEndpoint) },
    { connections: 16, tokensFile: many },
  );
  const baseline = process.env.BENCH_BASELINE_DIST;
  if (baseline) {
    const env = { BENCH_DIST: baseline };
    await add(
      'base-warm',
      'delegate-proxy.ts',
      { config: proxyConfig(upstream.info.url, tokenEndpoint) },
      { connections: 16, token },
      env,
    );
    await add(
      'base-users',
      'delegate-proxy.ts',
      { config: proxyConfig(upstream.info.url, tokenEndpoint) },
      { connections: 16, tokensFile: many },
      env,
    );
  }
  for (const c of configs) {
    // Warm: every user's first exchange (slowly enough for the AS), then steady load.
    if (c.spec.tokensFile)
      await runWrk({ ...c.spec, url: c.child.info.url, connections: 8, durationS: Math.ceil(users / 60) }, layout);
    await runWrk({ ...c.spec, url: c.child.info.url, durationS: 2 }, layout);
    const { requests, calls } = await traced(c.child.pid, () =>
      runWrk({ ...c.spec, url: c.child.info.url, durationS: seconds }, layout),
    );
    const total = [...calls.values()].reduce((a, b) => a + b, 0);
    const per = Object.fromEntries(
      [...calls.entries()]
        .filter(([, n]) => n / requests >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => [k, Math.round((n / requests) * 100) / 100]),
    );
    process.stdout.write(
      `${JSON.stringify({ kind: 'syscalls', config: c.name, requests, perRequest: Math.round((total / requests) * 100) / 100, calls: per })}\n`,
    );
  }
} finally {
  await Promise.all(children.map((c) => c.stop()));
}
