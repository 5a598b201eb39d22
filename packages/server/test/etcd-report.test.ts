import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRequestScope, loadConfigFile, silentLogger } from '@trousseau/core';
import { createKeyRingFile } from '@trousseau/provider-local';
import { createTestCertificates } from '@trousseau/testing';
import { Etcd3 } from 'etcd3';
import { TrousseauServer } from '../src/index.js';
import { startEtcd, type RunningEtcd } from './etcd-server.js';
import { removeDir, runCli, scratchDir } from './helpers.js';

// `trousseau etcd-report` against a real etcd (TLS, client certificates), holding objects written the way
// kube-apiserver writes them, with data keys wrapped by real Trousseau brokers (local provider).

/** A protobuf varint. */
function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A length-delimited protobuf field (wire type 2). */
function lengthDelimited(field: number, value: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

/**
 * kube-apiserver's KMS v2 `EncryptedObject`, encoded by hand from the field numbers of its api.proto
 * (encryptedData = 1, keyID = 2, encryptedDEKSource = 3, annotations = 4, encryptedDEKSourceType = 5),
 * independently of the report's own decoder.
 */
function encryptedObject(fields: {
  keyId: string;
  dekSource: Uint8Array;
  annotations?: Record<string, Buffer>;
  seed?: boolean;
}): Buffer {
  return Buffer.concat([
    lengthDelimited(1, randomBytes(80)),
    lengthDelimited(2, Buffer.from(fields.keyId)),
    lengthDelimited(3, fields.dekSource),
    ...Object.entries(fields.annotations ?? {}).map(([key, value]) =>
      lengthDelimited(4, Buffer.concat([lengthDelimited(1, Buffer.from(key)), lengthDelimited(2, value)])),
    ),
    ...(fields.seed === true ? [varint((5 << 3) | 0), varint(1)] : []),
  ]);
}

const kmsV2 = (plugin: string, object: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`k8s:enc:kms:v2:${plugin}:`), object]);

function kmsV1(plugin: string, dekCiphertext: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(dekCiphertext.length);
  return Buffer.concat([Buffer.from(`k8s:enc:kms:v1:${plugin}:`), length, dekCiphertext, randomBytes(60)]);
}

/** A Kubernetes protobuf-encoded object as kube-apiserver stores it without encryption. */
const identity = (): Buffer => Buffer.concat([Buffer.from('k8s\x00'), randomBytes(40)]);

/** The key-id digest Trousseau's envelope header carries: first 8 bytes of SHA-256, in hex. */
const digestOf = (keyId: string): string => createHash('sha256').update(keyId).digest('hex').slice(0, 16);

interface Wrapped {
  readonly ciphertext: Buffer;
  readonly keyId: string;
}

interface Plugin {
  wrap(): Promise<Wrapped>;
  close(): Promise<void>;
}

/** A real Trousseau broker (local provider) whose Encrypt wraps fresh data keys. */
async function trousseau(dir: string, config: string): Promise<Plugin> {
  const file = join(dir, `${randomBytes(4).toString('hex')}.yaml`);
  await writeFile(file, config);
  const server = await TrousseauServer.create({ loaded: await loadConfigFile(file), logger: silentLogger });
  await server.broker.start();
  return {
    async wrap() {
      const scope = createRequestScope({ deadline: Date.now() + 10_000, logger: silentLogger });
      try {
        const result = await server.broker.encrypt(randomBytes(32), scope.context);
        return { ciphertext: Buffer.from(result.ciphertext), keyId: result.keyId };
      } finally {
        scope.dispose();
      }
    },
    close: () => server.broker.close(),
  };
}

interface JsonCiphertext {
  format: string;
  problem?: string;
  envelopeVersion?: number;
  copies?: { instance: string; keyIdDigest: string; keyRef: string }[];
  kmsKeyId?: string;
  dekSourceType?: string;
  count: number;
  objects?: string[];
}
interface JsonStorage {
  kind: string;
  name?: string;
  problem?: string;
  count: number;
  objects?: string[];
  ciphertexts?: JsonCiphertext[];
}
interface JsonReport {
  revision: string;
  satisfied: boolean;
  resources: {
    resource: string;
    keyPrefix: string;
    total: number;
    storage: JsonStorage[];
    shortfalls: { requirement: string; count: number; objects?: string[] }[];
  }[];
}

describe('trousseau etcd-report against a real etcd', () => {
  let etcd: RunningEtcd;
  let writer: Etcd3;
  let dir: string;
  let oldKms: Plugin;
  let newKms: Plugin;
  let oldKeyId: string;
  let newKeyId: string;
  const tls = (): string[] => ['--cacert', etcd.caFile, '--cert', etcd.certFile, '--key', etcd.keyFile];

  before(async () => {
    const certificates = await createTestCertificates();
    etcd = await startEtcd(certificates);
    writer = new Etcd3({
      hosts: etcd.endpoint,
      credentials: {
        rootCertificate: Buffer.from(certificates.ca),
        certChain: Buffer.from(certificates.clientCert),
        privateKey: Buffer.from(certificates.clientKey),
      },
    });
    dir = await scratchDir();
    await createKeyRingFile(join(dir, 'old.json'));
    await createKeyRingFile(join(dir, 'new.json'));
    oldKms = await trousseau(
      dir,
      'version: 1\nproviders:\n  - {name: old-kms, type: local, config: {keyFile: old.json}}\n',
    );
    newKms = await trousseau(
      dir,
      'version: 1\nencryptWith: new-kms\nkms: {envelopeVersion: 1}\nproviders:\n  - {name: new-kms, type: local, config: {keyFile: new.json}}\n  - {name: old-kms, type: local, config: {keyFile: old.json}}\n',
    );
    const [a1, a2, a3, b1] = await Promise.all([oldKms.wrap(), oldKms.wrap(), oldKms.wrap(), newKms.wrap()]);
    oldKeyId = a1.keyId;
    newKeyId = b1.keyId;
    const objects: Record<string, Buffer> = {
      '/registry/secrets/default/plain-1': identity(),
      '/registry/secrets/default/plain-2': Buffer.from('{"kind":"Secret","apiVersion":"v1"}'),
      '/registry/secrets/default/cbc': Buffer.concat([
        Buffer.from('k8s:enc:aescbc:v1:key1:'),
        randomBytes(48),
      ]),
      '/registry/secrets/default/box': Buffer.concat([
        Buffer.from('k8s:enc:secretbox:v1:box1:'),
        randomBytes(48),
      ]),
      '/registry/secrets/kube-system/a-1': kmsV2(
        'trousseau',
        encryptedObject({ keyId: a1.keyId, dekSource: a1.ciphertext, seed: true }),
      ),
      '/registry/secrets/kube-system/a-2': kmsV2(
        'trousseau',
        encryptedObject({
          keyId: a2.keyId,
          dekSource: a2.ciphertext,
          seed: true,
          annotations: { 'version.trousseau.kms.k8s.io': Buffer.from('1') },
        }),
      ),
      '/registry/secrets/kube-system/b-1': kmsV2(
        'trousseau',
        encryptedObject({ keyId: b1.keyId, dekSource: b1.ciphertext, seed: true }),
      ),
      '/registry/secrets/default/v1-a': kmsV1('trousseau-v1', a3.ciphertext),
      '/registry/secrets/default/foreign': kmsV2(
        'other-plugin',
        encryptedObject({ keyId: 'projects/p/keys/k/1', dekSource: randomBytes(64) }),
      ),
      '/registry/secrets/default/damaged': kmsV2(
        'trousseau',
        encryptedObject({
          keyId: a1.keyId,
          dekSource: Buffer.concat([Buffer.from('TRS\x09'), randomBytes(40)]),
        }),
      ),
      // Not secrets: another resource, and a resource whose name only starts like it.
      '/registry/configmaps/default/settings': identity(),
      '/registry/secretsextra/default/x': identity(),
    };
    for (const [key, value] of Object.entries(objects)) await writer.put(key).value(value);
  });

  after(async () => {
    writer?.close();
    await Promise.all([oldKms?.close(), newKms?.close()]);
    await etcd?.close();
    if (dir !== undefined) await removeDir(dir);
  });

  async function report(...args: string[]): Promise<{ code: number | null; json: JsonReport }> {
    const result = await runCli(['etcd-report', '--endpoints', etcd.endpoint, ...tls(), '--json', ...args]);
    assert.equal(result.stderr, '');
    return { code: result.code, json: JSON.parse(result.stdout) as JsonReport };
  }

  it('counts every Secret by how it is stored, and Trousseau copies by instance and key-id digest', async () => {
    const { code, json } = await report('--names');
    assert.equal(code, 0);
    assert.equal(json.resources.length, 1);
    const secrets = json.resources[0];
    assert.equal(secrets?.resource, 'secrets');
    assert.equal(secrets?.keyPrefix, '/registry/secrets/');
    assert.equal(secrets?.total, 10);
    const storage = new Map(secrets?.storage.map((group) => [`${group.kind}/${group.name ?? ''}`, group]));
    assert.deepEqual(storage.get('identity/')?.objects, ['default/plain-1', 'default/plain-2']);
    assert.deepEqual(storage.get('aescbc/key1')?.objects, ['default/cbc']);
    assert.deepEqual(storage.get('secretbox/box1')?.objects, ['default/box']);
    assert.deepEqual(storage.get('kms-v2/other-plugin')?.ciphertexts, [
      {
        format: 'other',
        kmsKeyId: 'projects/p/keys/k/1',
        dekSourceType: 'AES_GCM_KEY',
        count: 1,
        objects: ['default/foreign'],
      },
    ]);
    const v2 = storage.get('kms-v2/trousseau');
    assert.equal(v2?.count, 4);
    const underOld = v2?.ciphertexts?.find((group) => group.copies?.[0]?.instance === 'old-kms');
    assert.deepEqual(underOld?.copies, [
      { instance: 'old-kms', keyIdDigest: digestOf(oldKeyId), keyRef: underOld?.copies?.[0]?.keyRef },
    ]);
    assert.match(underOld?.copies?.[0]?.keyRef ?? '', /^key-/);
    assert.equal(underOld?.envelopeVersion, 2);
    assert.equal(underOld?.kmsKeyId, oldKeyId);
    assert.equal(underOld?.dekSourceType, 'HKDF_SHA256_XNONCE_AES_GCM_SEED');
    assert.deepEqual(underOld?.objects, ['kube-system/a-1', 'kube-system/a-2']);
    const underNew = v2?.ciphertexts?.find((group) => group.copies?.[0]?.instance === 'new-kms');
    assert.equal(underNew?.envelopeVersion, 1);
    assert.equal(underNew?.copies?.[0]?.keyIdDigest, digestOf(newKeyId));
    assert.deepEqual(underNew?.objects, ['kube-system/b-1']);
    const damaged = v2?.ciphertexts?.find((group) => group.format === 'trousseau-unreadable');
    assert.deepEqual(damaged?.objects, ['default/damaged']);
    assert.match(damaged?.problem ?? '', /version 9 is not supported/);
    const v1 = storage.get('kms-v1/trousseau-v1');
    assert.equal(v1?.ciphertexts?.[0]?.copies?.[0]?.instance, 'old-kms');
    assert.equal(v1?.ciphertexts?.[0]?.copies?.[0]?.keyIdDigest, digestOf(oldKeyId));
    assert.equal(v1?.ciphertexts?.[0]?.kmsKeyId, undefined);
    assert.deepEqual(v1?.ciphertexts?.[0]?.objects, ['default/v1-a']);
  });

  it('reads page by page at one revision, the same as in one page, and writes nothing', async () => {
    const before = (await writer.getAll().prefix('/registry/').exec()).header.revision;
    const whole = await report('--page-size', '1000');
    const paged = await report('--page-size', '2');
    assert.deepEqual(paged.json, whole.json);
    assert.equal(whole.json.revision, before);
    const afterwards = (await writer.getAll().prefix('/registry/').exec()).header.revision;
    assert.equal(afterwards, before, 'the report must not write to etcd');
  });

  it('reports other resources under their own prefix, and a custom --etcd-prefix', async () => {
    const { json } = await report('--resource', 'configmaps', '--resource', 'secretsextra');
    assert.deepEqual(
      json.resources.map((resource) => [resource.resource, resource.total, resource.storage[0]?.kind]),
      [
        ['configmaps', 1, 'identity'],
        ['secretsextra', 1, 'identity'],
      ],
    );
    const elsewhere = await report('--prefix', '/other-cluster');
    assert.equal(elsewhere.json.resources[0]?.total, 0);
  });

  it('prints a readable report that flags plaintext Secrets', async () => {
    const result = await runCli(['etcd-report', '--endpoints', etcd.endpoint, ...tls()]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /secrets: 10 object\(s\) under \/registry\/secrets\//);
    assert.match(result.stdout, /\n {2,}2 {2}identity: NOT ENCRYPTED/);
    assert.match(result.stdout, /KMS v2 plugin "trousseau"/);
    assert.match(
      result.stdout,
      new RegExp(`Trousseau envelope v2: old-kms \\(key-id digest ${digestOf(oldKeyId)}`),
    );
    assert.doesNotMatch(result.stdout, /default\/plain-1/, 'names only with --names');
  });

  it('--require-copy and --require-key-id exit 1 naming what lacks them, 0 once every Secret is rewritten', async () => {
    const short = await report('--require-copy', 'new-kms', '--require-key-id', newKeyId, '--names');
    assert.equal(short.code, 1);
    assert.equal(short.json.satisfied, false);
    const [copy, keyId] = short.json.resources[0]?.shortfalls ?? [];
    assert.equal(copy?.count, 9);
    assert.equal(keyId?.count, 9);
    assert.ok(copy?.objects?.includes('default/plain-1'));
    assert.ok(!copy?.objects?.includes('kube-system/b-1'));

    // The runbook's "rewrite every Secret": each one now under the new instance, in a resource of its own.
    for (let index = 0; index < 3; index += 1) {
      const wrapped = await newKms.wrap();
      await writer
        .put(`/registry/rewritten/default/s-${index}`)
        .value(kmsV2('trousseau', encryptedObject({ keyId: wrapped.keyId, dekSource: wrapped.ciphertext })));
    }
    const met = await report(
      '--resource',
      'rewritten',
      '--require-copy',
      'new-kms',
      '--require-key-id',
      newKeyId,
    );
    assert.equal(met.code, 0);
    assert.equal(met.json.satisfied, true);
    assert.deepEqual(
      met.json.resources[0]?.shortfalls.map((shortfall) => shortfall.count),
      [0, 0],
    );
    const oldKey = await report('--resource', 'rewritten', '--require-key-id', oldKeyId);
    assert.equal(oldKey.code, 1);
  });

  it('fails fast with a readable error when etcd refuses the connection (no client certificate)', async () => {
    const result = await runCli([
      'etcd-report',
      '--endpoints',
      etcd.endpoint,
      '--cacert',
      etcd.caFile,
      '--timeout',
      '2000',
    ]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^trousseau: cannot read etcd at https:\/\/127\.0\.0\.1:\d+: .*UNAVAILABLE/);
  });
});
