import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createLogger, createProxy, resolveConfig } from '../lib/dist.js';
import { childOptions, serve } from './child.js';

// The proxy under soak (bench/soak.ts): the compiled dist/ (what ships), its own process, started
// with --expose-gc so that a sample can be taken after a full collection.

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const { config } = childOptions<{ config: Record<string, unknown> }>();
const resolved = resolveConfig(config, {});
const registry = new Registry();
const proxy = createProxy(resolved, {
  logger: createLogger({
    level: resolved.logging.level,
    destination: pino.destination({ dest: '/dev/null', sync: false }),
  }),
  registry,
  listen: { host: '127.0.0.1', port: 0 },
  admin: { host: '127.0.0.1', port: 0 },
});
const started = await proxy.start();

const MB = 1024 * 1024;
const mb = (n: number) => Math.round((n / MB) * 10) / 10;

/** Sum of a counter's values by one label, read from our own registry. */
async function byLabel(name: string, label: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric(name)?.get();
  const out: Record<string, number> = {};
  for (const v of metric?.values ?? []) {
    const key = String(v.labels[label] ?? '');
    out[key] = (out[key] ?? 0) + v.value;
  }
  return out;
}

function memory() {
  const m = process.memoryUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.space_size)]));
  return {
    rss: mb(m.rss),
    heapTotal: mb(m.heapTotal),
    heapUsed: mb(m.heapUsed),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
    spaces,
  };
}

/** RSS split by kind (Linux): anonymous (heaps, malloc) vs file-backed (the node binary's pages). */
function rssKinds(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(RssAnon|RssFile|RssShmem):\s+(\d+) kB/.exec(line);
    if (m) out[m[1] as string] = Math.round((Number(m[2]) / 1024) * 10) / 10;
  }
  return out;
}

async function sample(): Promise<unknown> {
  const before = memory();
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(20);
  }
  const after = memory();
  return {
    before,
    after,
    fds: readdirSync('/proc/self/fd').length,
    rssKinds: rssKinds(),
    cacheSize: proxy.tokens.cache.size,
    requests: await byLabel('delegate_proxy_requests_total', 'code'),
    exchanges: await byLabel('delegate_proxy_token_exchanges_total', 'outcome'),
    lookups: await byLabel('delegate_proxy_token_cache_lookups_total', 'result'),
  };
}

serve(
  { url: started.url, adminUrl: started.adminUrl, node: process.version },
  { sample, memory, snapshot: (file) => writeHeapSnapshot(String(file)) },
  () => proxy.close(),
);
