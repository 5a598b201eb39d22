import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { validateKubeObject } from './support/kubernetes-schemas.js';
import { ensureKubectl, kustomize, kustomizeWith } from './support/kustomize.js';
import { repoPath } from './support/paths.js';
import { checkTrousseauPod, resolvePort, trousseauContainer } from './support/pod-checks.js';
import { checkTrousseauConfig, type CheckedConfig } from './support/trousseau-config.js';
import { checkVaultProxyPod, readProxyHcl } from './support/vault-proxy.js';
import { validateEncryptionConfiguration } from './support/encryption-configuration-schema.js';
import { parseYaml, readYamlFile, type KubeObject } from './support/yaml-files.js';

const KUSTOMIZE = repoPath('deploy', 'kustomize');
const OVERLAYS = readdirSync(`${KUSTOMIZE}/overlays`).sort();

function only<T>(objects: readonly KubeObject[], kind: string): T {
  const matching = objects.filter((object) => object.kind === kind);
  assert.equal(matching.length, 1, `exactly one ${kind}`);
  return matching[0] as unknown as T;
}

interface Rendered {
  readonly objects: KubeObject[];
  readonly daemonSet: IDaemonSet;
  readonly serviceAccount: IServiceAccount;
  readonly checked: CheckedConfig;
}

/** Renders a kustomization, validates every object, and checks what every variant shares. */
async function renderAndCheck(dir: string, label: string): Promise<Rendered> {
  const objects = kustomize(dir);
  for (const object of objects) validateKubeObject(object);
  for (const object of objects)
    assert.equal(object.metadata?.namespace, 'kube-system', `${object.kind} in kube-system`);

  const daemonSet = only<IDaemonSet>(objects, 'DaemonSet');
  const serviceAccount = only<IServiceAccount>(objects, 'ServiceAccount');
  const configMap = only<IConfigMap>(objects, 'ConfigMap');
  const spec = daemonSet.spec?.template.spec;
  assert.ok(spec, 'the DaemonSet has a pod template');

  // Control-plane nodes only, through their taints.
  assert.deepEqual(spec.nodeSelector, { 'node-role.kubernetes.io/control-plane': '' });
  for (const key of ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master']) {
    assert.ok(
      spec.tolerations?.some(
        (toleration) =>
          toleration.key === key && toleration.operator === 'Exists' && toleration.effect === 'NoSchedule',
      ),
      `tolerates ${key}:NoSchedule`,
    );
  }
  assert.equal(spec.serviceAccountName, serviceAccount.metadata?.name);
  assert.equal(daemonSet.spec?.updateStrategy?.type, 'RollingUpdate');
  assert.deepEqual(daemonSet.spec?.selector.matchLabels, { 'app.kubernetes.io/name': 'trousseau' });
  assert.equal(daemonSet.spec?.template.metadata?.labels?.['app.kubernetes.io/name'], 'trousseau');

  // The config comes from the rendered ConfigMap (hash-suffixed name), and it is a valid Trousseau config.
  const configVolume = spec.volumes?.find((volume) => volume.configMap !== undefined);
  assert.equal(
    configVolume?.configMap?.name,
    configMap.metadata?.name,
    'the pod mounts the rendered ConfigMap',
  );
  const configText = configMap.data?.['config.yaml'];
  assert.ok(configText, 'the ConfigMap holds config.yaml');
  const checked = await checkTrousseauConfig(
    parseYaml(configText, `${label} config.yaml`),
    `${label} config.yaml`,
  );
  checkTrousseauPod(spec, checked.config, checked.healthListen);

  // Secrets come from Secret or projected volumes, never inline.
  const secretsVolume = spec.volumes?.find((volume) => volume.name === 'secrets');
  assert.ok(secretsVolume?.projected, 'credentials come from a projected volume');
  assert.ok(
    secretsVolume.projected.sources?.some((source) => source.secret?.name === 'trousseau-credentials'),
    'the projected volume includes the Secret trousseau-credentials',
  );
  assert.equal(
    trousseauContainer(spec).volumeMounts?.find((mount) => mount.name === 'secrets')?.readOnly,
    true,
  );
  assert.equal(spec.automountServiceAccountToken, false, 'no Kubernetes API token in the pod');
  return { objects, daemonSet, serviceAccount, checked };
}

function report(label: string, checked: CheckedConfig): void {
  console.log(
    `# ${label}: provider options validated with the provider's schema: ${checked.validatedProviders.join(', ') || 'none'}`,
  );
}

const kmsV2 = validateEncryptionConfiguration(
  readYamlFile(repoPath('deploy', 'encryption-config', 'kms-v2.yaml')),
);

function assertSocketMatchesEncryptionConfig(checked: CheckedConfig): void {
  const endpoint = kmsV2.resources[0]?.providers[0]?.kms?.endpoint;
  assert.equal(
    endpoint,
    `unix://${checked.config.socket.path}`,
    'EncryptionConfiguration points at the socket',
  );
}

describe('kustomize manifests', () => {
  before(() => {
    console.log(`# kubectl kustomize runs with: ${ensureKubectl()}`);
  });

  it('has the Vault, Vault Proxy, AWS and Azure overlays', () => {
    assert.deepEqual(OVERLAYS, ['aws', 'azure', 'vault', 'vault-proxy']);
  });

  it('base: a DaemonSet on control-plane nodes with the local provider', async () => {
    const { checked } = await renderAndCheck(`${KUSTOMIZE}/base`, 'base');
    report('base', checked);
    assert.equal(checked.config.providers[0]?.type, 'local');
    assertSocketMatchesEncryptionConfig(checked);
  });

  it('overlay vault: Kubernetes auth with a projected token for audience "vault"', async () => {
    const { daemonSet, checked } = await renderAndCheck(`${KUSTOMIZE}/overlays/vault`, 'overlay vault');
    report('overlay vault', checked);
    assertSocketMatchesEncryptionConfig(checked);
    const provider = checked.config.providers.find((entry) => entry.type === 'vault');
    assert.ok(provider, 'a vault provider');
    const auth = provider.config['auth'] as { method?: string; tokenFile?: string; role?: string };
    assert.equal(auth.method, 'kubernetes');
    assert.ok(auth.role);
    const sources = daemonSet.spec?.template.spec?.volumes?.find((volume) => volume.name === 'secrets')
      ?.projected?.sources;
    const token = sources?.find((source) => source.serviceAccountToken !== undefined)?.serviceAccountToken;
    assert.equal(token?.audience, 'vault');
    assert.ok((token?.expirationSeconds ?? 0) >= 600, 'the kubelet requires at least 10 minutes');
    const mount = trousseauContainer(daemonSet.spec?.template.spec ?? { containers: [] }).volumeMounts?.find(
      (candidate) => candidate.name === 'secrets',
    );
    assert.equal(auth.tokenFile, `${mount?.mountPath}/${token?.path}`, 'tokenFile is the projected token');
  });

  it('overlay vault-proxy: Vault Proxy as a sidecar logs in with its own projected token', async () => {
    const { daemonSet, checked, objects } = await renderAndCheck(
      `${KUSTOMIZE}/overlays/vault-proxy`,
      'overlay vault-proxy',
    );
    report('overlay vault-proxy', checked);
    assertSocketMatchesEncryptionConfig(checked);
    const spec = daemonSet.spec?.template.spec;
    assert.ok(spec);
    const hcl = only<IConfigMap>(objects, 'ConfigMap').data?.['proxy.hcl'];
    assert.ok(hcl, 'the ConfigMap holds proxy.hcl');
    checkVaultProxyPod(spec, checked.config, readProxyHcl(hcl));
    const token = spec.volumes
      ?.find((volume) => volume.name === 'vault-proxy-credentials')
      ?.projected?.sources?.find((source) => source.serviceAccountToken !== undefined)?.serviceAccountToken;
    assert.equal(token?.audience, 'vault');
    assert.match(hcl, new RegExp(`token_path\\s*=\\s*"/var/run/secrets/vault-proxy/${token?.path ?? ''}"`));
  });

  it('overlay aws: IRSA role annotation on the service account', async () => {
    const { serviceAccount, checked } = await renderAndCheck(`${KUSTOMIZE}/overlays/aws`, 'overlay aws');
    report('overlay aws', checked);
    assertSocketMatchesEncryptionConfig(checked);
    assert.match(
      serviceAccount.metadata?.annotations?.['eks.amazonaws.com/role-arn'] ?? '',
      /^arn:aws[a-z-]*:iam::[0-9]{12}:role\/.+$/,
    );
    assert.equal(serviceAccount.metadata?.annotations?.['eks.amazonaws.com/audience'], 'sts.amazonaws.com');
    const provider = checked.config.providers.find((entry) => entry.type === 'awskms');
    assert.ok(provider, 'an awskms provider');
    assert.match(String(provider.config['keyId']), /^(arn:aws[a-z-]*:kms:|alias\/|[0-9a-f-]{36}$)/);
  });

  it('overlay azure: workload identity label on the pod, client id on the service account', async () => {
    const { daemonSet, serviceAccount, checked } = await renderAndCheck(
      `${KUSTOMIZE}/overlays/azure`,
      'overlay azure',
    );
    report('overlay azure', checked);
    assertSocketMatchesEncryptionConfig(checked);
    assert.equal(daemonSet.spec?.template.metadata?.labels?.['azure.workload.identity/use'], 'true');
    assert.match(
      serviceAccount.metadata?.annotations?.['azure.workload.identity/client-id'] ?? '',
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    const provider = checked.config.providers.find((entry) => entry.type === 'azure');
    assert.ok(provider, 'an azure provider');
    assert.deepEqual(provider.config['credential'], { type: 'workloadIdentity' });
  });

  for (const overlay of OVERLAYS) {
    it(`component servicemonitor with overlay ${overlay}: a ServiceMonitor scraping /metrics`, () => {
      const objects = kustomizeWith(
        [`${KUSTOMIZE}/overlays/${overlay}`],
        [`${KUSTOMIZE}/components/servicemonitor`],
      );
      for (const object of objects) validateKubeObject(object);
      const daemonSet = only<IDaemonSet>(objects, 'DaemonSet');
      const service = only<IService>(objects, 'Service');
      const monitor = only<IServiceMonitor>(objects, 'ServiceMonitor');
      const podLabels = daemonSet.spec?.template.metadata?.labels ?? {};
      for (const [key, value] of Object.entries(service.spec?.selector ?? {})) {
        assert.equal(podLabels[key], value, `the Service selects the pods (${key})`);
      }
      assert.ok(Object.keys(service.spec?.selector ?? {}).length > 0);
      for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels ?? {})) {
        assert.equal(
          service.metadata?.labels?.[key],
          value,
          `the ServiceMonitor selects the Service (${key})`,
        );
      }
      const endpoint = monitor.spec.endpoints?.[0];
      assert.equal(endpoint?.path, '/metrics');
      const servicePort = service.spec?.ports?.find((port) => port.name === endpoint?.port);
      assert.ok(servicePort, 'the endpoint names a Service port');
      const container = trousseauContainer(daemonSet.spec?.template.spec ?? { containers: [] });
      assert.equal(
        resolvePort(container, servicePort.targetPort),
        8787,
        'the Service targets the side listener',
      );
      // The alert rules select job="trousseau": the ServiceMonitor takes the job from a Service label.
      assert.ok(monitor.spec.jobLabel, 'the ServiceMonitor sets jobLabel');
      assert.equal(service.metadata?.labels?.[monitor.spec.jobLabel], 'trousseau', 'job="trousseau"');
      const rules = only<IPrometheusRule>(objects, 'PrometheusRule');
      assert.deepEqual(
        rules.spec.groups,
        (readYamlFile(repoPath('deploy', 'monitoring', 'trousseau-rules.yaml')) as { groups: unknown })
          .groups,
        'the PrometheusRule carries the groups of deploy/monitoring/trousseau-rules.yaml',
      );
    });
  }
});
