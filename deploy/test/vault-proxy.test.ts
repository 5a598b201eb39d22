// The static pod that runs Vault Proxy beside Trousseau (deploy/static-pod/vault-proxy). The DaemonSet
// variant (overlays/vault-proxy) is checked with the other overlays in kustomize.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { IPod } from 'kubernetes-models/v1/Pod';
import { validateKubeObject } from './support/kubernetes-schemas.js';
import { repoPath } from './support/paths.js';
import { checkTrousseauPod } from './support/pod-checks.js';
import { checkTrousseauConfig } from './support/trousseau-config.js';
import { checkVaultProxyPod, readProxyHcl } from './support/vault-proxy.js';
import { parseManifests, readYamlFile } from './support/yaml-files.js';

describe('static pod with Vault Proxy', () => {
  it('runs Vault Proxy beside Trousseau, which reaches Vault through the proxy socket with no credential', async () => {
    const dir = ['deploy', 'static-pod', 'vault-proxy'];
    const objects = parseManifests(
      readFileSync(repoPath(...dir, 'trousseau.yaml'), 'utf8'),
      'deploy/static-pod/vault-proxy/trousseau.yaml',
    );
    assert.equal(objects.length, 1);
    validateKubeObject(objects[0] as (typeof objects)[number]);
    const pod = objects[0] as unknown as IPod;
    const spec = pod.spec;
    assert.ok(spec);
    assert.equal(pod.metadata?.namespace, 'kube-system');
    assert.equal(spec.serviceAccountName, undefined, 'a static pod has no service account');
    for (const volume of spec.volumes ?? []) {
      assert.ok(
        volume.hostPath !== undefined || volume.emptyDir !== undefined,
        `${volume.name}: no API object`,
      );
    }
    const checked = await checkTrousseauConfig(
      readYamlFile(repoPath(...dir, 'config.yaml')),
      'deploy/static-pod/vault-proxy/config.yaml',
    );
    checkTrousseauPod(spec, checked.config, checked.healthListen);
    checkVaultProxyPod(
      spec,
      checked.config,
      readProxyHcl(readFileSync(repoPath(...dir, 'proxy.hcl'), 'utf8')),
    );
    // The proxy's files come from the node, where the header of trousseau.yaml puts proxy.hcl.
    const proxyConfig = spec.volumes?.find((volume) => volume.name === 'vault-proxy-config');
    assert.equal(proxyConfig?.hostPath?.path, '/etc/vault-proxy');
  });
});
