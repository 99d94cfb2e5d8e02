import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireCommand } from '../helpers/require-tool.js';
import { asArray, asRecord, at, DEPLOY, loadYamlDocs } from './deploy-files.js';
import { dashboardQueries, expandGrafanaVariables, ruleGroups } from './promql.js';

const UNIT_TESTS = join(DEPLOY, 'prometheus/tests/delegate-proxy-alerts.test.yaml');
// The rule file name the unit tests load (rule_files), written from the PrometheusRule's spec.
const RULES_NAME = 'delegate-proxy-rules.yaml';
const hasPromtool = requireCommand('promtool', 'apt-get install prometheus (.ci/run does)');

function alerts(): Record<string, unknown>[] {
  return ruleGroups().flatMap((g) => asArray(g.rules).map((r) => asRecord(r)));
}

describe('PrometheusRule', () => {
  it('has the alerts an on-call engineer needs', () => {
    expect(alerts().map((a) => a.alert)).toEqual(
      expect.arrayContaining([
        'DelegateProxyTokenExchangeErrors',
        'DelegateProxyAuthorizationServerUnavailable',
        'DelegateProxyTokensNearExpiry',
        'DelegateProxyTokenTtlCapped',
        'DelegateProxyStepUpTimeouts',
        'DelegateProxyNotReady',
        'DelegateProxySecurityEventsRejected',
      ]),
    );
  });

  it('names every alert once, with a severity, a for duration, a summary and a description', () => {
    const names = alerts().map((a) => String(a.alert));
    expect(new Set(names).size).toBe(names.length);
    for (const a of alerts()) {
      expect(['critical', 'warning', 'info'], String(a.alert)).toContain(at(a, 'labels', 'severity'));
      expect(String(a.for), String(a.alert)).toMatch(/^\d+[smh]$/);
      expect(String(at(a, 'annotations', 'summary')).length, String(a.alert)).toBeGreaterThan(10);
      expect(String(at(a, 'annotations', 'description')).length, String(a.alert)).toBeGreaterThan(40);
    }
  });

  it('has a promtool unit test that fires each alert', () => {
    const [tests] = loadYamlDocs(UNIT_TESTS);
    expect(at(tests, 'rule_files')).toEqual([RULES_NAME]);
    const firing = new Set<string>();
    for (const t of asArray(at(tests, 'tests'))) {
      for (const c of asArray(asRecord(t).alert_rule_test)) {
        const check = asRecord(c);
        if (asArray(check.exp_alerts).length > 0) firing.add(String(check.alertname));
      }
    }
    expect([...firing].sort()).toEqual(
      alerts()
        .map((a) => String(a.alert))
        .sort(),
    );
  });
});

describe.skipIf(!hasPromtool)('promtool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'delegate-proxy-promtool-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function promtool(...args: string[]): { code: number | null; output: string } {
    const res = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    return { code: res.status, output: `${res.stdout}${res.stderr}` };
  }

  it('check rules accepts the PrometheusRule groups', () => {
    writeFileSync(join(dir, RULES_NAME), stringify({ groups: ruleGroups() }));
    const res = promtool('check', 'rules', RULES_NAME);
    expect(res.output).toContain('SUCCESS');
    expect(res.code, res.output).toBe(0);
  });

  it('test rules: the alert unit tests pass', () => {
    writeFileSync(join(dir, RULES_NAME), stringify({ groups: ruleGroups() }));
    copyFileSync(UNIT_TESTS, join(dir, 'alerts.test.yaml'));
    const res = promtool('test', 'rules', 'alerts.test.yaml');
    expect(res.code, res.output).toBe(0);
    expect(res.output).toContain('SUCCESS');
  });

  it('every dashboard query is valid PromQL', () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(20);
    const rules = queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: expandGrafanaVariables(q.expr) }));
    writeFileSync(join(dir, 'dashboard-queries.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const res = promtool('check', 'rules', 'dashboard-queries.yaml');
    expect(res.code, res.output).toBe(0);
  });
});
