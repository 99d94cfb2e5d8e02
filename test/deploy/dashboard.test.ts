import { describe, expect, it } from 'vitest';
import { asRecord, isRecord } from './deploy-files.js';
import { CONTRACT_METRICS } from './metric-contract.js';
import { dashboardPanels, dashboardQueries, loadDashboard, metricNamesIn } from './promql.js';

const dashboard = loadDashboard();
const panels = dashboardPanels(dashboard);
const visible = panels.filter((p) => p.type !== 'row');
// Grafana's data source variable, literally (not a JS template).
const DATASOURCE = '$' + '{datasource}';

function titles(type: string): string[] {
  return visible.filter((p) => p.type === type).map((p) => String(p.title));
}

describe('Grafana dashboard', () => {
  it('has a stable uid, a title and a Prometheus data source variable', () => {
    expect(dashboard.uid).toBe('delegate-proxy');
    expect(dashboard.title).toBe('delegate-proxy');
    const list = asRecord(dashboard.templating).list;
    const vars = Array.isArray(list) ? list.map((v) => asRecord(v)) : [];
    expect(vars.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(vars.map((v) => v.name)).toEqual(['datasource', 'namespace', 'route']);
  });

  it('gives every panel a unique id, a title, a description and the data source variable', () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of visible) {
      expect(String(p.title).length, JSON.stringify(p.gridPos)).toBeGreaterThan(2);
      expect(String(p.description ?? '').length, String(p.title)).toBeGreaterThan(10);
      expect(asRecord(p.datasource).uid, String(p.title)).toBe(DATASOURCE);
      const targets = Array.isArray(p.targets) ? p.targets : [];
      expect(targets.length, String(p.title)).toBeGreaterThan(0);
      for (const t of targets) expect(asRecord(asRecord(t).datasource).uid).toBe(DATASOURCE);
    }
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const cells = new Set<string>();
    for (const p of panels) {
      const { x, y, w, h } = asRecord(p.gridPos) as { x: number; y: number; w: number; h: number };
      expect(x + w, String(p.title)).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const cell = `${i},${j}`;
          expect(cells.has(cell), `${String(p.title)} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });

  it('shows the token lifetime heatmaps and the operations time series', () => {
    expect(titles('heatmap')).toEqual(['Issued token lifetime', 'Time left when injected']);
    const all = titles('timeseries');
    for (const t of [
      'Requests by route',
      'Errors by route and code',
      'Exchanges by outcome',
      'Exchange latency',
      'Refreshes by trigger',
      'Cache hit ratio by route',
      'Cache entries by pod',
      'MCP denials',
      'Step-ups',
      'Open WebSockets by route',
      'WebSocket upgrades by outcome',
    ]) {
      expect(all).toContain(t);
    }
  });

  it('heatmaps read histogram buckets as pre-computed heatmap frames', () => {
    for (const p of visible.filter((x) => x.type === 'heatmap')) {
      expect(asRecord(p.options).calculate).toBe(false);
      const [target] = Array.isArray(p.targets) ? p.targets : [];
      expect(isRecord(target) && target.format).toBe('heatmap');
      expect(String(isRecord(target) && target.expr)).toMatch(/sum by \(le\) \(increase\(\w+_bucket\{/);
    }
  });

  it('uses every proxy metric of the contract', () => {
    const used = new Set(dashboardQueries().flatMap((q) => metricNamesIn(q.expr)));
    const usedFamilies = new Set([...used].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    const unused = Object.keys(CONTRACT_METRICS).filter((m) => !used.has(m) && !usedFamilies.has(m));
    expect(unused).toEqual([]);
  });
});
