import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
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
      (u) => !(familyOf(u.name, histograms) in CONTRACT_METRICS) && !EXTERNAL_METRICS.has(u.name) && !defaults.has(u.name),
    );
    expect(unknown).toEqual([]);
  });

  it('read histograms only through _bucket, _sum or _count', () => {
    const histograms = Object.entries(CONTRACT_METRICS).flatMap(([n, t]) => (t === 'histogram' ? [n] : []));
    expect(proxyUses.filter((u) => histograms.includes(u.name))).toEqual([]);
  });

  // The contract list above is checked against the proxy's own list once src/ exports it.
  it.skipIf(!existsSync(METRICS_MODULE))('are all exported by src/observability/metrics.ts (METRIC_NAMES)', async () => {
    const mod: unknown = await import(pathToFileURL(METRICS_MODULE).href);
    const exported = (mod as { METRIC_NAMES?: readonly string[] }).METRIC_NAMES;
    expect(Array.isArray(exported), 'METRIC_NAMES is exported').toBe(true);
    const names = new Set((exported ?? []).map((n) => (n.startsWith(PREFIX) ? n : PREFIX + n)));
    const histograms = new Set(
      [...names].filter((n) => CONTRACT_METRICS[n as keyof typeof CONTRACT_METRICS] === 'histogram' || n.endsWith('_seconds')),
    );
    const missing = [...new Set(proxyUses.map((u) => familyOf(u.name, histograms)))].filter((n) => !names.has(n));
    expect(missing).toEqual([]);
  });
});
