import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';
import { ROOT } from './deploy-files.js';
import { CONTRACT_METRICS, EXTERNAL_METRICS, familyOf } from './metric-contract.js';
import { dashboardQueries, metricNamesIn, type Query, ruleQueries } from './promql.js';

const METRICS_MODULE = join(ROOT, 'src/observability/metrics.ts');
const PREFIX = 'delegate_proxy_';

interface Use {
  name: string;
  where: string;
}

function uses(queries: Query[]): Use[] {
  return queries.flatMap((q) => metricNamesIn(q.expr).map((name) => ({ name, where: q.where })));
}

const all = [...uses(dashboardQueries()), ...uses(ruleQueries())];
const proxyUses = all.filter((u) => u.name.startsWith(PREFIX));

/** prom-client's default process and Node.js metrics, as the proxy registers them. */
async function defaultMetricFamilies(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const families = await registry.getMetricsAsJSON();
  const names = new Set<string>();
  for (const f of families) {
    names.add(f.name);
    if (String(f.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(f.name + s);
  }
  return names;
}

describe('metric names used by the dashboard and the alerts', () => {
  it('finds the names in the queries (extractor self-test)', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (route, le) (rate(a_seconds_bucket{route=~"$route", x="b_total"}[5m]))) / on (route) group_left sum(b_total offset 1h) > 1e-9',
      ).sort(),
    ).toEqual(['a_seconds_bucket', 'b_total']);
    expect(all.length).toBeGreaterThan(30);
  });

  it('are metrics of the contract, prom-client defaults, or named external series', async () => {
    const histograms = new Set(Object.entries(CONTRACT_METRICS).flatMap(([n, t]) => (t === 'histogram' ? [n] : [])));
    const defaults = await defaultMetricFamilies();
    const unknown = all.filter(
      (u) =>
        !(familyOf(u.name, histograms) in CONTRACT_METRICS) && !EXTERNAL_METRICS.has(u.name) && !defaults.has(u.name),
    );
    expect(unknown).toEqual([]);
  });

  it('read histograms only through _bucket, _sum or _count', () => {
    const histograms = Object.entries(CONTRACT_METRICS).flatMap(([n, t]) => (t === 'histogram' ? [n] : []));
    expect(proxyUses.filter((u) => histograms.includes(u.name))).toEqual([]);
  });

  // The contract list above is checked against the proxy's own list.
  it('are all exported by src/observability/metrics.ts (METRIC_NAMES)', async () => {
    const mod: unknown = await import(pathToFileURL(METRICS_MODULE).href);
    const exported = (mod as { METRIC_NAMES?: readonly string[] }).METRIC_NAMES;
    expect(Array.isArray(exported), 'METRIC_NAMES is exported').toBe(true);
    const names = new Set((exported ?? []).map((n) => (n.startsWith(PREFIX) ? n : PREFIX + n)));
    const histograms = new Set(
      [...names].filter(
        (n) => CONTRACT_METRICS[n as keyof typeof CONTRACT_METRICS] === 'histogram' || n.endsWith('_seconds'),
      ),
    );
    const missing = [...new Set(proxyUses.map((u) => familyOf(u.name, histograms)))].filter((n) => !names.has(n));
    expect(missing).toEqual([]);
  });
});

/** Families (`# TYPE` lines) and sample lines of a Prometheus text exposition. */
function parseExposition(text: string): { families: Map<string, string>; samples: string[] } {
  const families = new Map<string, string>();
  const samples: string[] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] && type[2]) families.set(type[1], type[2]);
    else if (line && !line.startsWith('#')) samples.push(line);
  }
  return { families, samples };
}

describe('metric names used by the dashboard and the alerts, against a real scrape', () => {
  const closers: (() => Promise<void>)[] = [];
  let scrape: { families: Map<string, string>; samples: string[] };

  beforeAll(async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const proxy = await startProxy({
      as,
      config: {
        routes: [
          {
            name: 'documents',
            match: { pathPrefix: '/documents' },
            upstream: upstream.url,
            stripPrefix: true,
            scopes: ['documents:read'],
          },
        ],
      },
    });
    closers.push(() => proxy.close());
    const user = await as.userToken('alice', ['documents:read']);
    // Real traffic: an exchange (miss), a cache hit, a 401 without a token and a 404 without a route.
    for (const [path, auth] of [
      ['/documents/a', true],
      ['/documents/b', true],
      ['/documents/c', false],
      ['/nowhere', true],
    ] as const) {
      const res = await request(`${proxy.url}${path}`, { headers: auth ? { authorization: `Bearer ${user}` } : {} });
      await res.body.dump();
    }
    const res = await request(`${proxy.adminUrl}/metrics`);
    expect(res.statusCode).toBe(200);
    scrape = parseExposition(await res.body.text());
  });

  afterAll(async () => {
    while (closers.length > 0) await closers.pop()?.();
  });

  it('every name is a family in /metrics (proxy metrics and prom-client defaults)', () => {
    const histograms = new Set([...scrape.families].flatMap(([n, t]) => (t === 'histogram' ? [n] : [])));
    const missing = all.filter(
      (u) => !EXTERNAL_METRICS.has(u.name) && !scrape.families.has(familyOf(u.name, histograms)),
    );
    expect(missing).toEqual([]);
  });

  it('the scrape has exactly the proxy metrics of the contract, with their types', () => {
    const proxyFamilies = Object.fromEntries([...scrape.families].filter(([n]) => n.startsWith(PREFIX)));
    expect(proxyFamilies).toEqual(CONTRACT_METRICS);
  });

  it('histogram buckets that the alerts select (le="...") exist', () => {
    const les = new Set(
      ruleQueries().flatMap((q) => [...q.expr.matchAll(/_bucket\{[^}]*le="([^"]+)"/g)].map((m) => m[1])),
    );
    expect(les.size).toBeGreaterThan(0);
    for (const le of les) {
      expect(
        scrape.samples.some(
          (s) => s.startsWith('delegate_proxy_token_remaining_ttl_seconds_bucket{') && s.includes(`le="${le}"`),
        ),
        `bucket le="${le}"`,
      ).toBe(true);
    }
  });

  it('label values the alerts match on are what the proxy emits (code is the numeric status)', () => {
    expect(scrape.samples.some((s) => /^delegate_proxy_requests_total\{[^}]*code="200"/.test(s))).toBe(true);
    expect(scrape.samples.some((s) => /^delegate_proxy_requests_total\{[^}]*code="401"/.test(s))).toBe(true);
    expect(scrape.samples.some((s) => /^delegate_proxy_token_exchanges_total\{[^}]*outcome="success"/.test(s))).toBe(
      true,
    );
    expect(scrape.samples.some((s) => /^delegate_proxy_token_cache_lookups_total\{[^}]*result="hit"/.test(s))).toBe(
      true,
    );
  });
});
