import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  validateEncryptionConfiguration,
  type EncryptionConfiguration,
} from './support/encryption-configuration-schema.js';
import { validateKubeObject } from './support/kubernetes-schemas.js';
import { repoPath } from './support/paths.js';
import { checkTrousseauConfig } from './support/trousseau-config.js';
import { readYamlFile, type KubeObject } from './support/yaml-files.js';

const DIR = repoPath('deploy', 'encryption-config');
const load = (name: string): EncryptionConfiguration =>
  validateEncryptionConfiguration(readYamlFile(`${DIR}/${name}`));

/** Every Trousseau config this repository ships, by where it is. */
const CONFIGS = [
  'deploy/kustomize/base/config.yaml',
  'deploy/kustomize/overlays/vault/config.yaml',
  'deploy/kustomize/overlays/aws/config.yaml',
  'deploy/kustomize/overlays/azure/config.yaml',
  'deploy/static-pod/config.yaml',
  'deploy/systemd/config.yaml',
];

describe('EncryptionConfiguration examples', () => {
  it('every file validates against the EncryptionConfiguration schema', () => {
    const files = readdirSync(DIR)
      .filter((name) => name.endsWith('.yaml'))
      .sort();
    assert.deepEqual(files, ['kms-v1.yaml', 'kms-v2-migration.yaml', 'kms-v2.yaml']);
    for (const file of files) validateKubeObject(readYamlFile(`${DIR}/${file}`) as KubeObject);
  });

  it('KMS v2: Trousseau first, then identity to read what was stored before', () => {
    const config = load('kms-v2.yaml');
    assert.equal(config.resources.length, 1);
    const [resource] = config.resources;
    assert.deepEqual(resource?.resources, ['secrets']);
    assert.deepEqual(resource?.providers, [
      {
        kms: {
          apiVersion: 'v2',
          name: 'trousseau',
          endpoint: 'unix:///var/run/trousseau/kms.sock',
          timeout: '3s',
        },
      },
      { identity: {} },
    ]);
  });

  it('KMS v1: the same socket with a DEK cache, for old clusters', () => {
    const config = load('kms-v1.yaml');
    const kms = config.resources[0]?.providers[0]?.kms;
    assert.equal(kms?.apiVersion, undefined, 'no apiVersion: v1, and understood by clusters before 1.25');
    assert.equal(kms?.endpoint, 'unix:///var/run/trousseau/kms.sock');
    assert.ok((kms?.cachesize ?? 0) > 0);
    assert.deepEqual(config.resources[0]?.providers[1], { identity: {} });
  });

  it('migration: two KMS v2 providers with distinct names and sockets, new one first', () => {
    const config = load('kms-v2-migration.yaml');
    const providers = config.resources[0]?.providers ?? [];
    const [fresh, old, identity] = providers;
    assert.equal(fresh?.kms?.name, 'trousseau-new');
    assert.equal(old?.kms?.name, 'trousseau');
    assert.notEqual(fresh?.kms?.endpoint, old?.kms?.endpoint);
    assert.deepEqual(
      old?.kms,
      load('kms-v2.yaml').resources[0]?.providers[0]?.kms,
      'the old entry is kms-v2.yaml unchanged',
    );
    assert.deepEqual(identity, { identity: {} });
  });

  it('the schema rejects what kube-apiserver rejects', () => {
    const base = (kms: Record<string, unknown>): unknown => ({
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'EncryptionConfiguration',
      resources: [{ resources: ['secrets'], providers: [{ kms }] }],
    });
    const good = { apiVersion: 'v2', name: 'trousseau', endpoint: 'unix:///var/run/trousseau/kms.sock' };
    assert.doesNotThrow(() => validateEncryptionConfiguration(base(good)));
    assert.throws(() => validateEncryptionConfiguration(base({ ...good, cachesize: 100 })), /cachesize/);
    assert.throws(
      () => validateEncryptionConfiguration(base({ ...good, endpoint: 'tcp://127.0.0.1:1' })),
      /endpoint/,
    );
    assert.throws(() => validateEncryptionConfiguration(base({ ...good, apiVersion: 'v3' })), /apiVersion/);
    assert.throws(() => validateEncryptionConfiguration(base({ ...good, name: 'a:b' })), /contains ":"/);
    assert.throws(
      () => validateEncryptionConfiguration(base({ ...good, timout: '3s' })),
      /additional properties/,
    );
    assert.throws(() => validateEncryptionConfiguration(base({ ...good, timeout: '3' })), /timeout/);
    assert.throws(() => validateEncryptionConfiguration(base({ ...good, timeout: '0s' })), /zero timeout/);
    assert.throws(
      () =>
        validateEncryptionConfiguration({
          apiVersion: 'apiserver.config.k8s.io/v1',
          kind: 'EncryptionConfiguration',
          resources: [{ resources: ['secrets'], providers: [{ kms: good, identity: {} }] }],
        }),
      /must NOT have more than 1 properties/,
    );
  });

  it('points at the socket every shipped Trousseau config serves', async () => {
    const endpoints = new Set(
      ['kms-v2.yaml', 'kms-v1.yaml'].map((file) => load(file).resources[0]?.providers[0]?.kms?.endpoint),
    );
    assert.equal(endpoints.size, 1);
    for (const file of CONFIGS) {
      const { config } = await checkTrousseauConfig(readYamlFile(repoPath(...file.split('/'))), file);
      assert.ok(endpoints.has(`unix://${config.socket.path}`), `${file} serves ${config.socket.path}`);
    }
  });
});
