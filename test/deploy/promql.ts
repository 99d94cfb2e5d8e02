import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asArray, asRecord, at, DEPLOY, isRecord, loadYamlDocs } from './deploy-files.js';

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
]);

/**
 * Metric names referenced by a PromQL expression: identifiers that are not functions, aggregation
 * operators, keywords, label names (inside `{}` or `by (...)`-style groups) or string contents.
 */
export function metricNamesIn(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:$])[A-Za-z_:][\w:]*/g)) {
    const after = s.slice(m.index + m[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

export interface Query {
  where: string;
  expr: string;
}

export const RULE_FILE = join(DEPLOY, 'prometheus/prometheusrule.yaml');
export const DASHBOARD_FILE = join(DEPLOY, 'grafana/delegate-proxy-dashboard.json');

export function ruleGroups(): Record<string, unknown>[] {
  const [rule] = loadYamlDocs(RULE_FILE);
  return asArray(at(rule, 'spec', 'groups')).map((g) => asRecord(g));
}

export function ruleQueries(): Query[] {
  return ruleGroups().flatMap((g) =>
    asArray(g.rules).map((r) => {
      const rule = asRecord(r);
      return { where: `rule ${String(rule.alert ?? rule.record)}`, expr: String(rule.expr) };
    }),
  );
}

export function loadDashboard(): Record<string, unknown> {
  return asRecord(JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')));
}

export function dashboardPanels(dashboard = loadDashboard()): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const visit = (panels: unknown): void => {
    for (const p of Array.isArray(panels) ? panels : []) {
      if (!isRecord(p)) continue;
      out.push(p);
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

/** Panel targets and variable queries; `label_values(metric, label)` yields the metric selector. */
export function dashboardQueries(dashboard = loadDashboard()): Query[] {
  const out: Query[] = [];
  for (const panel of dashboardPanels(dashboard)) {
    for (const t of Array.isArray(panel.targets) ? panel.targets : []) {
      if (isRecord(t) && typeof t.expr === 'string')
        out.push({ where: `panel "${String(panel.title)}"`, expr: t.expr });
    }
  }
  const templating =
    isRecord(dashboard.templating) && Array.isArray(dashboard.templating.list) ? dashboard.templating.list : [];
  for (const v of templating) {
    if (!isRecord(v) || v.type !== 'query') continue;
    const q = isRecord(v.query) ? String(v.query.query) : String(v.query);
    const m = /^label_values\((.+),\s*\w+\)$/.exec(q);
    out.push({ where: `variable $${String(v.name)}`, expr: m?.[1] ?? q });
  }
  return out;
}

/** Grafana variables replaced by values that keep the expression valid PromQL. */
export function expandGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?[A-Za-z_]\w*\}?/g, '.*');
}
