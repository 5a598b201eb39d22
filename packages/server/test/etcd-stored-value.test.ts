import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { encodeEnvelope, sealReplicatedEnvelope } from '@trousseau/core';
import { classifyStoredValue } from '../src/etcd-report/stored-value.js';

// The edges of reading kube-apiserver's stored values by prefix; the real formats, written into a real
// etcd and read through the CLI, are in etcd-report.test.ts.

const value = (...parts: (string | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'latin1') : part)));

const envelope = encodeEnvelope({
  instance: 'vault-a',
  keyId: 'vault:k:3',
  payload: Buffer.from('vault:v3:abc'),
});

describe('classifyStoredValue', () => {
  it('reads aesgcm, and a KMS v1 value by its 2-byte length', () => {
    assert.deepEqual(classifyStoredValue(value('k8s:enc:aesgcm:v1:key2:', Buffer.alloc(30))), {
      kind: 'aesgcm',
      name: 'key2',
    });
    const stored = classifyStoredValue(
      value('k8s:enc:kms:v1:p:', Buffer.of(0, envelope.length), envelope, Buffer.alloc(50)),
    );
    assert.deepEqual(stored, {
      kind: 'kms-v1',
      name: 'p',
      plugin: {
        format: 'trousseau',
        envelopeVersion: 1,
        // SHA-256("vault:k:3") starts 6ec66691ba238f45.
        copies: [{ instance: 'vault-a', keyIdDigest: '6ec66691ba238f45', keyRef: '' }],
      },
    });
  });

  it('names every copy of a replicated (version 4) envelope, in order, with its key-id digest', () => {
    const replicated = sealReplicatedEnvelope(
      'trousseau-replicated:2:00',
      [
        { instance: 'vault-a', keyId: 'vault:k:3', payload: Buffer.from('vault:v3:abc') },
        {
          instance: 'aws-b',
          keyId: 'aws:k',
          keyRef: 'arn:aws:kms:eu-west-1:111122223333:key/k',
          payload: Buffer.alloc(40, 1),
        },
      ],
      Buffer.alloc(32, 2),
    );
    const stored = classifyStoredValue(
      value('k8s:enc:kms:v1:p:', Buffer.of(0, replicated.length), replicated),
    );
    assert.deepEqual(stored.plugin, {
      format: 'trousseau',
      envelopeVersion: 4,
      keyIdDigest: createHash('sha256').update('trousseau-replicated:2:00').digest('hex').slice(0, 16),
      copies: [
        { instance: 'vault-a', keyIdDigest: '6ec66691ba238f45', keyRef: '' },
        {
          instance: 'aws-b',
          keyIdDigest: createHash('sha256').update('aws:k').digest('hex').slice(0, 16),
          keyRef: 'arn:aws:kms:eu-west-1:111122223333:key/k',
        },
      ],
    });
  });

  it('says what is wrong with a value it cannot read, and never throws', () => {
    assert.deepEqual(classifyStoredValue(value('k8s:enc:kms:v1:p:', Buffer.of(1, 0), envelope)), {
      kind: 'kms-v1',
      name: 'p',
      problem: 'DEK ciphertext of 256 bytes does not fit the value',
    });
    assert.equal(classifyStoredValue(value('k8s:enc:kms:v1:p:', Buffer.of(0))).problem, 'no DEK length');
    assert.match(
      classifyStoredValue(value('k8s:enc:kms:v2:p:', Buffer.of(0x0a, 0x7f, 1))).problem ?? '',
      /^not a KMS v2 EncryptedObject: /,
    );
    // A well-formed EncryptedObject without field 3 has no plugin ciphertext to report on.
    assert.match(
      classifyStoredValue(value('k8s:enc:kms:v2:p:', Buffer.of(0x12, 1, 0x6b))).problem ?? '',
      /no encryptedDEKSource \(field 3\)/,
    );
    assert.deepEqual(classifyStoredValue(value('k8s:enc:kms')), {
      kind: 'unknown',
      name: 'k8s:enc:kms',
      problem: 'truncated prefix',
    });
    assert.deepEqual(classifyStoredValue(value('k8s:enc:kms:v9:p:', Buffer.alloc(4))), {
      kind: 'unknown',
      name: 'k8s:enc:kms:v9:p:',
    });
  });

  it('tells a foreign plugin ciphertext from a damaged Trousseau one', () => {
    const foreign = classifyStoredValue(value('k8s:enc:kms:v1:p:', Buffer.of(0, 3), 'abc'));
    assert.deepEqual(foreign.plugin, { format: 'other' });
    const damaged = Buffer.from(envelope.subarray(0, 8));
    const stored = classifyStoredValue(value('k8s:enc:kms:v1:p:', Buffer.of(0, damaged.length), damaged));
    assert.equal(stored.plugin?.format, 'trousseau-unreadable');
  });
});
