import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { decodeEnvelope, encodeEnvelope, TrousseauError } from '@trousseau/core';
import { rotateKeyRingFile } from '@trousseau/provider-local';
import { waitUntil } from '@trousseau/testing';
import { startTestServer, type TestServer } from './helpers.js';

async function expectCode(work: Promise<unknown>, code: GrpcStatus, pattern?: RegExp): Promise<void> {
  await assert.rejects(work, (error: ServiceError) => {
    assert.equal(
      error.code,
      code,
      `expected ${GrpcStatus[code]}, got ${GrpcStatus[error.code]}: ${error.details}`,
    );
    if (pattern !== undefined) assert.match(error.details, pattern);
    return true;
  });
}

describe('KMS v2 front-end over the unix socket, as kube-apiserver calls it', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('answers Status with version v2, healthz ok and a bounded key id', async () => {
    const status = await t.client.status();
    assert.equal(status.version, 'v2');
    assert.equal(status.healthz, 'ok');
    assert.ok(status.key_id.length > 0 && Buffer.byteLength(status.key_id) <= 1024);
  });

  it('encrypts a 32-byte DEK seed within the apiserver limits and decrypts it back', async () => {
    const seed = randomBytes(32);
    const status = await t.client.status();
    const encrypted = await t.client.encrypt(seed, 'uid-1');
    assert.ok(encrypted.ciphertext.length >= 1 && encrypted.ciphertext.length <= 1024);
    assert.equal(encrypted.key_id, status.key_id, 'Encrypt key_id must equal Status key_id');
    // The front-end promises no annotations (kms-v2-service.ts): the envelope carries all Decrypt needs.
    assert.deepEqual(encrypted.annotations, {});
    const decrypted = await t.client.decrypt({
      ciphertext: encrypted.ciphertext,
      keyId: encrypted.key_id,
      annotations: encrypted.annotations,
      uid: 'uid-2',
    });
    assert.deepEqual(decrypted.plaintext, seed);
  });

  it('serves 64 concurrent calls, each caller getting its own answer', async () => {
    const seeds = Array.from({ length: 64 }, () => randomBytes(32));
    const encrypted = await Promise.all(seeds.map((seed) => t.client.encrypt(seed)));
    const decrypted = await Promise.all(
      encrypted.map((response) =>
        t.client.decrypt({ ciphertext: response.ciphertext, keyId: response.key_id }),
      ),
    );
    decrypted.forEach((response, index) => assert.deepEqual(response.plaintext, seeds[index]));
  });

  it('rejects bad input with INVALID_ARGUMENT and keeps serving', async () => {
    const good = await t.client.encrypt(randomBytes(32));
    const tampered = Buffer.from(good.ciphertext);
    tampered[tampered.length - 5] = (tampered[tampered.length - 5] ?? 0) ^ 0x80;
    await expectCode(
      t.client.decrypt({ ciphertext: tampered, keyId: good.key_id }),
      GrpcStatus.INVALID_ARGUMENT,
      /CIPHERTEXT_INVALID/,
    );
    await expectCode(
      t.client.decrypt({ ciphertext: good.ciphertext, keyId: 'some-other-key' }),
      GrpcStatus.INVALID_ARGUMENT,
      /KEY_ID_MISMATCH/,
    );
    await expectCode(
      t.client.decrypt({ ciphertext: good.ciphertext.subarray(0, 7), keyId: good.key_id }),
      GrpcStatus.INVALID_ARGUMENT,
      /CIPHERTEXT_MALFORMED/,
    );
    await expectCode(
      t.client.decrypt({ ciphertext: Buffer.alloc(0), keyId: good.key_id }),
      GrpcStatus.INVALID_ARGUMENT,
      /REQUEST_EMPTY/,
    );
    await expectCode(t.client.encrypt(Buffer.alloc(0)), GrpcStatus.INVALID_ARGUMENT, /REQUEST_EMPTY/);
    await expectCode(
      t.client.encrypt(randomBytes(1024 * 1024)),
      GrpcStatus.INVALID_ARGUMENT,
      /REQUEST_TOO_LARGE/,
    );
    const envelope = decodeEnvelope(good.ciphertext);
    const foreign = encodeEnvelope({
      instance: 'elsewhere',
      keyId: good.key_id,
      keyRef: envelope.keyRef,
      payload: envelope.payload,
    });
    await expectCode(
      t.client.decrypt({ ciphertext: foreign, keyId: good.key_id }),
      GrpcStatus.INVALID_ARGUMENT,
      /UNKNOWN_PROVIDER/,
    );
    await expectCode(
      t.client.decrypt({ ciphertext: Buffer.from('vault:v1:abcdef'), keyId: good.key_id }),
      GrpcStatus.INVALID_ARGUMENT,
      /CIPHERTEXT_MALFORMED/,
    );
    const versioned = Buffer.from(good.ciphertext);
    versioned[3] = 9;
    await expectCode(
      t.client.decrypt({ ciphertext: versioned, keyId: good.key_id }),
      GrpcStatus.INVALID_ARGUMENT,
      /UNSUPPORTED_VERSION/,
    );

    assert.equal((await t.client.status()).healthz, 'ok');
    const again = await t.client.decrypt({ ciphertext: good.ciphertext, keyId: good.key_id });
    assert.equal(again.plaintext.length, 32);
  });

  it('maps an unreachable provider to UNAVAILABLE and an unexpected failure to INTERNAL, then recovers', async () => {
    t.faulty.faults.callError = new TrousseauError(
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      'backend unreachable: connect ECONNREFUSED',
    );
    await expectCode(t.client.encrypt(randomBytes(32)), GrpcStatus.UNAVAILABLE, /backend unreachable/);
    t.faulty.faults.callError = new Error('provider bug');
    await expectCode(t.client.encrypt(randomBytes(32)), GrpcStatus.INTERNAL, /provider bug/);
    t.faulty.faults.callError = undefined;
    const response = await t.client.encrypt(randomBytes(32));
    assert.ok(response.ciphertext.length > 0);
  });

  it('answers DEADLINE_EXCEEDED when the provider is slower than the call deadline, and aborts its work', async () => {
    // The provider never answers; the deadline leaves a loaded machine time to reach it first.
    t.faulty.faults.hold = new Promise(() => undefined);
    const callsBefore = t.faulty.calls;
    try {
      await expectCode(t.client.encrypt(randomBytes(32), 'slow', 1_000), GrpcStatus.DEADLINE_EXCEEDED);
    } finally {
      t.faulty.faults.hold = undefined;
    }
    assert.equal(t.faulty.calls, callsBefore + 1);
    await waitUntil(() => t.faulty.aborted > 0, "the provider's work is aborted at the deadline");
    assert.equal(t.faulty.aborted, 1, "the provider's work is aborted at the deadline, once");
    assert.equal((await t.client.status()).healthz, 'ok');
  });

  it('reports an unhealthy backend in healthz while keeping the last good key id', async () => {
    const healthy = await t.client.status();
    t.faulty.faults.status = { healthy: false, reason: 'backend down for maintenance' };
    try {
      await t.server.broker.refreshHealth();
      const status = await t.client.status();
      assert.equal(status.healthz, 'backend down for maintenance');
      assert.equal(status.key_id, healthy.key_id);
      assert.equal(status.version, 'v2');
    } finally {
      t.faulty.faults.status = undefined;
      await t.server.broker.refreshHealth();
    }
    assert.equal((await t.client.status()).healthz, 'ok');
  });

  it('fails Status with an error when the key itself is unusable, so the apiserver stops writing', async () => {
    t.faulty.faults.status = {
      healthy: false,
      reason: 'key disabled',
      code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
    };
    try {
      await t.server.broker.refreshHealth();
      await expectCode(
        t.client.status(),
        GrpcStatus.FAILED_PRECONDITION,
        /TROUSSEAU_ERR_PROVIDER_KEY_GONE.*key disabled/,
      );
    } finally {
      t.faulty.faults.status = undefined;
      await t.server.broker.refreshHealth();
    }
  });

  it('keeps the last key id when the status check itself throws', async () => {
    const healthy = await t.client.status();
    t.faulty.faults.statusError = new Error('socket hang up');
    try {
      await t.server.broker.refreshHealth();
      const status = await t.client.status();
      assert.match(status.healthz, /socket hang up/);
      assert.equal(status.key_id, healthy.key_id);
    } finally {
      t.faulty.faults.statusError = undefined;
      await t.server.broker.refreshHealth();
    }
  });

  it('changes the key id when the key is rotated; data under the old key still decrypts', async () => {
    const before = await t.client.status();
    const old = await t.client.encrypt(randomBytes(32));
    await rotateKeyRingFile(t.keyFile);
    await t.server.broker.refreshHealth();
    const after = await t.client.status();
    assert.notEqual(after.key_id, before.key_id);
    const fresh = await t.client.encrypt(randomBytes(32));
    assert.equal(fresh.key_id, after.key_id);
    const opened = await t.client.decrypt({ ciphertext: old.ciphertext, keyId: old.key_id });
    assert.equal(opened.plaintext.length, 32);
  });
});

describe('KMS v1beta1 front-end on the same socket', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  it('answers Version with v1beta1', async () => {
    const version = await t.client.v1Version();
    assert.equal(version.version, 'v1beta1');
    assert.equal(version.runtime_name, 'trousseau');
    assert.ok(version.runtime_version.length > 0);
  });

  it('passes the apiserver health probe: Encrypt("ping") then Decrypt', async () => {
    const encrypted = await t.client.v1Encrypt(Buffer.from('ping'));
    const decrypted = await t.client.v1Decrypt(encrypted.cipher);
    assert.equal(decrypted.plain.toString(), 'ping');
  });

  it('encrypts a fresh 32-byte DEK into 1..65535 bytes and decrypts it', async () => {
    const dek = randomBytes(32);
    const encrypted = await t.client.v1Encrypt(dek);
    assert.ok(encrypted.cipher.length >= 1 && encrypted.cipher.length <= 65_535);
    assert.deepEqual((await t.client.v1Decrypt(encrypted.cipher)).plain, dek);
  });

  it('rejects tampered, truncated and empty input with INVALID_ARGUMENT', async () => {
    const encrypted = await t.client.v1Encrypt(randomBytes(32));
    const tampered = Buffer.from(encrypted.cipher);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01;
    await expectCode(t.client.v1Decrypt(tampered), GrpcStatus.INVALID_ARGUMENT);
    await expectCode(t.client.v1Decrypt(encrypted.cipher.subarray(0, 5)), GrpcStatus.INVALID_ARGUMENT);
    await expectCode(t.client.v1Decrypt(Buffer.alloc(0)), GrpcStatus.INVALID_ARGUMENT);
    await expectCode(t.client.v1Encrypt(Buffer.alloc(0)), GrpcStatus.INVALID_ARGUMENT);
    await expectCode(t.client.v1Encrypt(randomBytes(1024 * 1024)), GrpcStatus.INVALID_ARGUMENT);
    assert.equal((await t.client.v1Version()).version, 'v1beta1');
  });
});

describe('KMS v2 Status version setting', () => {
  it('answers v2beta1 when configured, for Kubernetes 1.27-1.28', async () => {
    const t = await startTestServer({ kms: { statusVersion: 'v2beta1' } });
    try {
      const status = await t.client.status();
      assert.equal(status.version, 'v2beta1');
      assert.equal(status.healthz, 'ok');
    } finally {
      await t.close();
    }
  });
});
