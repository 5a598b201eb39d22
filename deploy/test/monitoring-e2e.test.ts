// End to end with a real Prometheus: it scrapes a running `trousseau serve` whose providers talk to the
// Vault and Azure Key Vault emulators, evaluates the shipped alert rules (with their `for:` durations
// shortened, nothing else changed), and answers the dashboard's queries. Everything listens on 127.0.0.1.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { KmsClient } from '@trousseau/core/grpc';
import { startNodeProcess, waitUntil, type NodeProcess } from '@trousseau/testing';
import { startAzureKeyVaultForProvider, type AzureKeyVaultEmulator } from '@trousseau/testing/azure';
import { startVaultEmulator, type VaultEmulator } from '@trousseau/testing/vault';
import { repoPath } from './support/paths.js';
import {
  ensurePrometheus,
  startPrometheus,
  type ApiAlert,
  type RunningPrometheus,
} from './support/prometheus.js';
import { exportedNames, metricNamesIn } from './support/promql.js';

const RULES_FILE = repoPath('deploy', 'monitoring', 'trousseau-rules.yaml');
const DASHBOARD_FILE = repoPath('deploy', 'monitoring', 'grafana-dashboard.json');
const SERVER_BIN = repoPath('packages', 'server', 'dist', 'bundle', 'trousseau.cjs');

/** Bound of every wait below: for a broken build, sized for a loaded CI machine; a wait that holds ends at once. */
const WAIT = { timeoutMs: 90_000, intervalMs: 100 };

/** The values Grafana gives its variables, for sending a dashboard query to Prometheus as it would. */
const GRAFANA_VARIABLES: Readonly<Record<string, string>> = {
  $__rate_interval: '1m',
  $__interval: '15s',
  $__range: '1h',
  $instance: '.*',
};

interface GrafanaPanel {
  readonly id?: number;
  readonly type: string;
  readonly title?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: { readonly expr?: string; readonly datasource?: { readonly uid?: string } }[];
  readonly panels?: GrafanaPanel[];
}
interface GrafanaDashboard {
  readonly uid: string;
  readonly title: string;
  readonly panels: GrafanaPanel[];
  readonly templating: {
    readonly list: { readonly name: string; readonly type: string; readonly definition?: string }[];
  };
}

function panelsOf(panels: readonly GrafanaPanel[]): GrafanaPanel[] {
  return panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])]);
}

/** A Grafana query with its variables replaced, as Grafana sends it. */
function asSent(expr: string): string {
  let sent = expr;
  for (const [variable, value] of Object.entries(GRAFANA_VARIABLES)) sent = sent.split(variable).join(value);
  assert.doesNotMatch(sent, /\$\w/, `a variable the test does not know in ${expr}`);
  return sent;
}

/** The shipped rules with every `for:` shortened to `shortFor`: the same expressions, labels and texts. */
function rulesWithShortFor(shortFor: string): string {
  const rules = parse(readFileSync(RULES_FILE, 'utf8')) as {
    groups: { rules: { alert: string; for?: string }[] }[];
  };
  for (const rule of rules.groups.flatMap((group) => group.rules)) {
    if (rule.for !== undefined) rule.for = shortFor;
  }
  return stringify(rules);
}

function alertsNamed(alerts: readonly ApiAlert[], name: string): ApiAlert[] {
  return alerts.filter((alert) => alert.labels.alertname === name);
}

describe('monitoring, end to end: a real Prometheus scraping a running Trousseau', () => {
  let dir: string;
  let vault: VaultEmulator;
  let azure: AzureKeyVaultEmulator;
  let serve: NodeProcess;
  let target: string;
  let prometheus: RunningPrometheus;

  before(async () => {
    console.log(`# prometheus runs with: ${ensurePrometheus()}`);
    dir = mkdtempSync(join(tmpdir(), 'trousseau-monitoring-'));
    vault = await startVaultEmulator();
    vault.createKey('kubernetes');
    vault.writePolicy('trousseau', [
      { path: 'transit/encrypt/kubernetes', capabilities: ['update'] },
      { path: 'transit/decrypt/kubernetes', capabilities: ['update'] },
      { path: 'transit/keys/kubernetes', capabilities: ['read'] },
    ]);
    // A token with a TTL, so the token's expiry gauges have series.
    writeFileSync(
      join(dir, 'vault-token'),
      vault.createToken({ policies: ['trousseau'], ttlSeconds: 3600 }),
      { mode: 0o600 },
    );
    const azureBackend = await startAzureKeyVaultForProvider({ dir, keyName: 'kek' });
    azure = azureBackend.emulator;
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        version: 1,
        socket: { path: join(dir, 'kms.sock') },
        encryptWith: 'vault',
        providers: [
          {
            name: 'vault',
            type: 'vault',
            config: {
              address: vault.url,
              keyName: 'kubernetes',
              auth: { method: 'token', token: { file: 'vault-token' } },
            },
          },
          // Decrypt-only beside Vault: its CA bundle gives credential_expiry_timestamp_seconds a series.
          { name: 'azure', type: 'azure', config: azureBackend.config },
        ],
        // A check may take as long as the interval (at most 5 s): 2 s, so a loaded CI machine does not time
        // Vault's health checks out, while sealing still shows within seconds.
        kms: { healthCheckIntervalSeconds: 2 },
        health: { listen: '127.0.0.1:0' },
      }),
    );
    serve = startNodeProcess(SERVER_BIN, ['serve', '--config', config]);
    await serve.waitFor('trousseau is serving', WAIT.timeoutMs);
    const serving = serve
      .output()
      .split('\n')
      .find((line) => line.includes('trousseau is serving'));
    target = (JSON.parse(serving ?? '{}') as { health?: string }).health ?? '';
    assert.match(target, /^127\.0\.0\.1:\d+$/, `the side listener's address in: ${serving}`);

    // Calls on both APIs, so the request, latency and batch-size series have samples.
    const client = new KmsClient(join(dir, 'kms.sock'), { timeoutMs: 10_000 });
    try {
      await waitUntil(async () => (await client.status()).healthz === 'ok', 'Status answers ok', WAIT);
      for (let index = 0; index < 3; index += 1) {
        const seed = randomBytes(32);
        const sealed = await client.encrypt(seed);
        assert.deepEqual(
          (await client.decrypt({ ciphertext: sealed.ciphertext, keyId: sealed.key_id })).plaintext,
          seed,
        );
      }
      const v1 = await client.v1Encrypt(Buffer.from('ping'));
      assert.equal((await client.v1Decrypt(v1.cipher)).plain.toString(), 'ping');
    } finally {
      client.close();
    }

    writeFileSync(join(dir, 'trousseau-rules.yaml'), rulesWithShortFor('2s'));
    prometheus = await startPrometheus(
      dir,
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
        rule_files: ['trousseau-rules.yaml'],
        scrape_configs: [{ job_name: 'trousseau', static_configs: [{ targets: [target] }] }],
      }),
    );
  });

  after(async () => {
    await prometheus?.stop();
    await serve?.stop();
    await vault?.close();
    await azure?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the shipped rules and scrapes Trousseau: up, and every provider healthy', async () => {
    const rules = await prometheus.alertingRules();
    assert.equal(rules.length, 10, 'every alerting rule of the shipped file is loaded');
    await waitUntil(
      async () =>
        (await prometheus.query('up{job="trousseau"} == 1')).length === 1 &&
        (await prometheus.query('trousseau_provider_healthy{job="trousseau"} == 1')).length === 2,
      'Prometheus sees Trousseau up and both providers healthy',
      WAIT,
    );
    const rulesNow = await prometheus.alertingRules();
    assert.ok(
      rulesNow.every((rule) => rule.health !== 'err'),
      `rules evaluate without error: ${JSON.stringify(rulesNow.filter((rule) => rule.health === 'err'))}`,
    );
  });

  it('fires TrousseauProviderUnhealthy while Vault is sealed, for Vault only, and resolves it once unsealed', async () => {
    const unhealthy = async (): Promise<ApiAlert[]> =>
      alertsNamed(await prometheus.alerts(), 'TrousseauProviderUnhealthy');
    assert.deepEqual(await unhealthy(), [], 'no provider alert while all is well');

    vault.seal();
    await waitUntil(
      async () => (await unhealthy()).some((alert) => alert.state === 'firing'),
      'TrousseauProviderUnhealthy fires',
      WAIT,
    );
    const firing = await unhealthy();
    assert.equal(firing.length, 1, `one alert: ${JSON.stringify(firing)}`);
    const [alert] = firing;
    assert.deepEqual(
      { ...alert?.labels },
      {
        alertname: 'TrousseauProviderUnhealthy',
        job: 'trousseau',
        instance: target,
        provider: 'vault',
        severity: 'critical',
      },
    );
    assert.equal(alert?.annotations.summary, `Key provider vault on ${target} is unhealthy`);
    assert.equal(
      alert?.annotations.runbook_url,
      'https://github.com/trousseau-io/trousseau/blob/main/docs/operations.md#trousseauproviderunhealthy',
    );

    vault.unseal();
    await waitUntil(
      async () => (await unhealthy()).length === 0,
      'TrousseauProviderUnhealthy resolves',
      WAIT,
    );
    const rule = (await prometheus.alertingRules()).find(
      (candidate) => candidate.name === 'TrousseauProviderUnhealthy',
    );
    assert.equal(rule?.state, 'inactive');
  });

  it('exports every metric the alert rules use', async () => {
    const exported = exportedNames(await (await fetch(`http://${target}/metrics`)).text());
    const rules = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    const used = new Set(
      rules.groups.flatMap((group) => group.rules.flatMap((rule) => metricNamesIn(rule.expr))),
    );
    assert.ok(used.size >= 8, `names found in the rules: ${[...used].join(', ')}`);
    for (const name of used) {
      if (name === 'up') continue; // Prometheus's own, per target
      assert.ok(exported.has(name), `${name} is in Trousseau's /metrics`);
    }
  });

  it('dashboard: every query parses and runs in Prometheus, and names only metrics a running Trousseau exports', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as GrafanaDashboard;
    assert.ok(dashboard.uid && dashboard.title, 'importable: a uid and a title');
    const panels = panelsOf(dashboard.panels);
    const ids = panels.map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const variables = new Set(dashboard.templating.list.map((variable) => variable.name));
    assert.ok(variables.has('datasource') && variables.has('instance'));

    const queries: string[] = [];
    for (const panel of panels) {
      if (panel.type === 'row') continue;
      assert.equal(panel.datasource?.uid, '${datasource}', `${panel.title}: the data source variable`);
      assert.ok((panel.targets ?? []).length > 0, `${panel.title}: has queries`);
      for (const query of panel.targets ?? []) {
        assert.ok(query.expr, `${panel.title}: a PromQL expression`);
        queries.push(query.expr);
      }
    }
    // A template variable's `label_values(SELECTOR, label)`: its selector is PromQL too.
    for (const variable of dashboard.templating.list) {
      const selector = /^label_values\((.+),\s*\w+\)$/.exec(variable.definition ?? '')?.[1];
      if (selector !== undefined) queries.push(selector);
    }
    assert.ok(queries.length >= 20, `${queries.length} queries`);

    const exported = exportedNames(await (await fetch(`http://${target}/metrics`)).text());
    const known = new Set(
      (await prometheus.query('count by (__name__) ({job="trousseau"})')).map(
        (result) => result.metric.__name__,
      ),
    );
    const used = new Set<string>();
    for (const expr of queries) {
      // Parses and evaluates, or Prometheus answers 400 with a parse error.
      await prometheus.query(asSent(expr));
      for (const name of metricNamesIn(expr)) used.add(name);
    }
    for (const name of used) {
      if (name.startsWith('trousseau_')) assert.ok(exported.has(name), `${name} is in Trousseau's /metrics`);
      else assert.ok(known.has(name), `${name} is a series of job "trousseau" in Prometheus`);
    }
    // What the issue asks the dashboard to show.
    for (const name of [
      'trousseau_grpc_requests_total',
      'trousseau_grpc_request_duration_seconds_bucket',
      'trousseau_provider_healthy',
      'trousseau_key_id_info',
      'trousseau_provider_batch_size_bucket',
      'trousseau_process_resident_memory_bytes',
      'trousseau_nodejs_eventloop_lag_p99_seconds',
    ]) {
      assert.ok(used.has(name), `the dashboard shows ${name}`);
    }
  });
});
