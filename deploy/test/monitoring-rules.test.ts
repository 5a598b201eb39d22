import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { repoPath } from './support/paths.js';
import { ensurePrometheus, promtool } from './support/prometheus.js';
import { metricNamesIn } from './support/promql.js';
import { readYamlFile } from './support/yaml-files.js';

const MONITORING = repoPath('deploy', 'monitoring');
const RULES_FILE = join(MONITORING, 'trousseau-rules.yaml');
const TESTS_DIR = join(MONITORING, 'tests');
const OPERATIONS = repoPath('docs', 'operations.md');

interface AlertingRule {
  readonly alert: string;
  expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}
interface RulesFile {
  readonly groups: { readonly name: string; readonly rules: AlertingRule[] }[];
}
interface PromtoolTestFile {
  readonly rule_files: string[];
  readonly tests: {
    readonly alert_rule_test?: { readonly alertname: string; readonly exp_alerts?: unknown[] }[];
  }[];
}

const rulesFile = readYamlFile(RULES_FILE) as RulesFile;
const alerts = rulesFile.groups.flatMap((group) => group.rules);
const testFiles = readdirSync(TESTS_DIR)
  .filter((name) => name.endsWith('.yaml'))
  .sort();

/** The promtool test files that evaluate `alertname`, with their parsed content. */
function testsOf(alertname: string): { file: string; content: PromtoolTestFile }[] {
  return testFiles
    .map((file) => ({ file, content: readYamlFile(join(TESTS_DIR, file)) as PromtoolTestFile }))
    .filter(({ content }) =>
      content.tests.some((test) => test.alert_rule_test?.some((check) => check.alertname === alertname)),
    );
}

/** GitHub's anchor of a Markdown heading: lowercase, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The sections of docs/operations.md by anchor, each with its text up to the next heading. */
function operationsSections(): Map<string, string> {
  const sections = new Map<string, string>();
  let current: string | undefined;
  for (const line of readFileSync(OPERATIONS, 'utf8').split('\n')) {
    const heading = /^#{1,6} (.+)$/.exec(line);
    if (heading?.[1] !== undefined) {
      current = anchorOf(heading[1]);
      sections.set(current, '');
    } else if (current !== undefined) {
      sections.set(current, `${sections.get(current) ?? ''}${line}\n`);
    }
  }
  return sections;
}

describe('alert rules (deploy/monitoring/trousseau-rules.yaml)', () => {
  let scratch: string;
  before(() => {
    console.log(`# promtool runs with: ${ensurePrometheus()}`);
    scratch = mkdtempSync(join(tmpdir(), 'trousseau-rules-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('passes `promtool check rules`, one group of alerting rules', () => {
    const result = promtool(['check', 'rules', RULES_FILE]);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, new RegExp(`SUCCESS: ${alerts.length} rules found`));
    assert.ok(alerts.length >= 10, `${alerts.length} alerts`);
    assert.ok(
      alerts.every((rule) => typeof rule.alert === 'string'),
      'only alerting rules',
    );
  });

  it('covers what the operations page promises: down, unhealthy, Status, errors, latency, key id, Vault token, credentials', () => {
    assert.deepEqual(alerts.map((rule) => rule.alert).sort(), [
      'TrousseauCredentialExpiringSoon',
      'TrousseauDecryptLatencyHigh',
      'TrousseauDown',
      'TrousseauEncryptLatencyHigh',
      'TrousseauErrorRatioHigh',
      'TrousseauKeyIdChanged',
      'TrousseauMetricsAbsent',
      'TrousseauProviderUnhealthy',
      'TrousseauStatusFailing',
      'TrousseauVaultTokenExpiring',
    ]);
  });

  it('gives every alert a severity, a summary, a description and a runbook link to its section of docs/operations.md', () => {
    const sections = operationsSections();
    for (const rule of alerts) {
      assert.ok(
        ['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''),
        `${rule.alert}: severity`,
      );
      const annotations = rule.annotations ?? {};
      assert.ok((annotations.summary ?? '').length > 20, `${rule.alert}: summary`);
      // What breaks for the cluster, and what to do first.
      assert.match(
        annotations.description ?? '',
        /\bFirst\b/,
        `${rule.alert}: the description says what to do first`,
      );
      const link =
        /^https:\/\/github\.com\/[\w.-]+\/[\w.-]+\/blob\/main\/docs\/operations\.md#([\w-]+)$/.exec(
          annotations.runbook_url ?? '',
        );
      assert.ok(
        link?.[1],
        `${rule.alert}: runbook_url ${annotations.runbook_url} links into docs/operations.md`,
      );
      assert.equal(link[1], rule.alert.toLowerCase(), `${rule.alert}: the anchor is the alert's name`);
      const section = sections.get(link[1]);
      assert.ok(section !== undefined, `${rule.alert}: docs/operations.md has a "${rule.alert}" heading`);
      assert.ok(section.trim().length > 200, `${rule.alert}: its runbook section says what to do`);
    }
  });

  it('selects the scrape job "trousseau" in every expression, and only metrics Trousseau exports (or up)', () => {
    for (const rule of alerts) {
      assert.match(rule.expr, /job="trousseau"/, `${rule.alert}: selects job="trousseau"`);
      for (const name of metricNamesIn(rule.expr)) {
        assert.ok(name === 'up' || name.startsWith('trousseau_'), `${rule.alert}: metric ${name}`);
      }
    }
  });

  it('reads metric names out of PromQL (the helper the dashboard and rule checks rely on)', () => {
    assert.deepEqual(
      metricNamesIn(
        'sum by (job, rpc) (rate(a_total{x="b_total", y=~"c|d"}[5m] offset 10m)) / on (job) group_left (le) b_bucket unless absent(up{job="t"}) > bool 0.25 * time()',
      ),
      ['a_total', 'b_bucket', 'up'],
    );
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))'),
      ['x_bucket'],
    );
  });

  it('ships the same groups as a PrometheusRule (generated by scripts/monitoring-prometheusrule.mjs)', () => {
    const object = readYamlFile(join(MONITORING, 'prometheusrule.yaml')) as {
      kind: string;
      spec: { groups: unknown };
    };
    assert.equal(object.kind, 'PrometheusRule');
    assert.deepEqual(
      object.spec.groups,
      rulesFile.groups,
      'prometheusrule.yaml is out of date: run `node scripts/monitoring-prometheusrule.mjs`',
    );
  });

  for (const rule of alerts) {
    it(`promtool test rules: ${rule.alert} fires when it should and stays silent when it should not`, () => {
      const files = testsOf(rule.alert);
      assert.ok(files.length > 0, `a test file in deploy/monitoring/tests evaluates ${rule.alert}`);
      const checks = files.flatMap(({ content }) =>
        content.tests
          .flatMap((test) => test.alert_rule_test ?? [])
          .filter((check) => check.alertname === rule.alert),
      );
      assert.ok(
        checks.some((check) => (check.exp_alerts ?? []).length > 0),
        `${rule.alert}: a check where it fires`,
      );
      assert.ok(
        checks.some((check) => (check.exp_alerts ?? []).length === 0),
        `${rule.alert}: a check where it stays silent`,
      );
      for (const { file, content } of files) {
        assert.deepEqual(content.rule_files, ['../trousseau-rules.yaml'], `${file} tests the shipped rules`);
        const result = promtool(['test', 'rules', file], TESTS_DIR);
        assert.equal(result.code, 0, `${file}:\n${result.output}`);
      }

      // The firing checks are real: with the alert's expression made never true, the same tests fail.
      const mutant = structuredClone(rulesFile);
      for (const candidate of mutant.groups.flatMap((group) => group.rules)) {
        if (candidate.alert === rule.alert) candidate.expr = 'vector(1) < 0';
      }
      const dir = mkdtempSync(join(scratch, `${rule.alert}-`));
      writeFileSync(join(dir, 'rules.yaml'), stringify(mutant));
      for (const { file, content } of files) {
        writeFileSync(join(dir, file), stringify({ ...content, rule_files: ['rules.yaml'] }));
        const result = promtool(['test', 'rules', file], dir);
        assert.notEqual(result.code, 0, `${file} still passes with ${rule.alert} never firing`);
        assert.match(result.output, new RegExp(`alertname: ${rule.alert}`));
      }
    });
  }
});
