import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Broker, noopMetrics, silentLogger, systemClock, type ProviderContext } from '@trousseau/core';
import { createTestProviderContext, testRequestContext } from '@trousseau/testing';
import { createKeyRingFile, LocalKeyProvider, rotateKeyRingFile } from '../src/index.js';

function contextFor(dir: string): ProviderContext {
  return createTestProviderContext({ instanceName: 'local', configDir: dir });
}

describe('local provider key ring', () => {
  it('creates a missing key file only when asked, with mode 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      await assert.rejects(
        LocalKeyProvider.open({ keyFile: 'absent.json', createIfMissing: false }, contextFor(dir)),
        /absent\.json/,
      );
      const provider = await LocalKeyProvider.open(
        { keyFile: 'dev/keys.json', createIfMissing: true },
        contextFor(dir),
      );
      const { stat } = await import('node:fs/promises');
      assert.equal((await stat(join(dir, 'dev/keys.json'))).mode & 0o777, 0o600);
      await provider.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a ciphertext that claims another key of the ring (the key name is bound)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      const keyFile = join(dir, 'keys.json');
      await createKeyRingFile(keyFile);
      const provider = await LocalKeyProvider.open({ keyFile, createIfMissing: false }, contextFor(dir));
      const old = await provider.encrypt(randomBytes(32), testRequestContext());
      const newId = await rotateKeyRingFile(keyFile);
      await provider.status(testRequestContext());
      await assert.rejects(
        provider.decrypt({ ciphertext: old.ciphertext, keyRef: newId }, testRequestContext()),
        (error: Error & { code?: string }) => error.code === 'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
      );
      await provider.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** The golden key ring: key `golden-key-1`, material bytes 00..1f. */
async function goldenBroker(dir: string): Promise<{ broker: Broker; provider: LocalKeyProvider }> {
  const keyFile = join(dir, 'keys.json');
  await writeFile(
    keyFile,
    JSON.stringify({
      version: 1,
      current: 'golden-key-1',
      keys: [{ id: 'golden-key-1', material: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' }],
    }),
    { mode: 0o600 },
  );
  const provider = await LocalKeyProvider.open({ keyFile, createIfMissing: false }, contextFor(dir));
  const broker = new Broker({
    providers: new Map([['local-dev', provider]]),
    encryptWith: 'local-dev',
    maxPlaintextBytes: 512,
    healthCheckIntervalMs: 60_000,
    logger: silentLogger,
    metrics: noopMetrics,
    clock: systemClock,
  });
  return { broker, provider };
}

const GOLDEN_KEY_ID = 'local:golden-key-1:4ff9abfcabfb4d10';
const GOLDEN_V1_HEX =
  '54525301096c6f63616c2d646576b5ccf037bfabcd940c676f6c64656e2d6b65792d31' +
  '000102030405060708090a0b3370b96eb696a77af861f0e4dd8d1d03a3a0e25784142d461854d7a57f1074d7d2a94b2921cc33cd91267c527689a351';

describe('local provider golden vectors (forever-format)', () => {
  it('decrypts a stored ciphertext of format version 1 through the broker, with its key id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      const { broker, provider } = await goldenBroker(dir);
      const stored = Buffer.from(GOLDEN_V1_HEX, 'hex');
      const plaintext = await broker.decrypt(stored, testRequestContext(), GOLDEN_KEY_ID);
      assert.equal(Buffer.from(plaintext).toString('utf8'), 'trousseau golden vector: 32 byte');
      assert.equal(
        Buffer.from(await broker.decrypt(stored, testRequestContext())).toString('utf8'),
        'trousseau golden vector: 32 byte',
        'v1beta1 and v2 without a key id read it too',
      );
      const status = await provider.status(testRequestContext());
      assert.ok(status.healthy);
      assert.equal(status.keyId, GOLDEN_KEY_ID, 'the local key id format is stable too');
      await broker.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('version 1 leaves exactly its key id digest unauthenticated without a key id (why version 2 exists)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      const { broker } = await goldenBroker(dir);
      const stored = Buffer.from(GOLDEN_V1_HEX, 'hex');
      const digestBits = new Set(Array.from({ length: 64 }, (_, index) => (5 + 9) * 8 + index));
      for (const keyId of [GOLDEN_KEY_ID, '']) {
        const opened: number[] = [];
        for (let bit = 0; bit < stored.length * 8; bit++) {
          const changed = Buffer.from(stored);
          changed[bit >> 3] = (changed[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          const result = await broker.decrypt(changed, testRequestContext(), keyId).then(
            () => true,
            () => false,
          );
          if (result) opened.push(bit);
        }
        // With the key id (KMS v2 as the apiserver calls it) every change is refused; without one (v1beta1,
        // or v2 with an empty key_id) the 64 bits of the digest are read by nothing, and nothing else opens.
        assert.deepEqual(opened, keyId === '' ? [...digestBits] : [], `key id "${keyId}"`);
      }
      await broker.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('decrypts a stored ciphertext of format version 2 through the broker, with and without its key id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      const { broker } = await goldenBroker(dir);
      // The same vector as packages/core/test/envelope.test.ts: binding key 20..3f, nonce 00..0b.
      const stored = Buffer.from(
        '54525302096c6f63616c2d646576b5ccf037bfabcd940c676f6c64656e2d6b65792d31' +
          '000102030405060708090a0b6723f438e1c0e43ca568bda09dc45642b3e7b507c44e694b005edfbe21543e8d7562c189dcb277f901841882e4e34d56ce2f05ee2eb9d1e01fa418397a9a818b4ae5ba35556ae5a12361b18a5c0affd5' +
          '926a2f4320dca590557ae5ec3cfe9427',
        'hex',
      );
      for (const keyId of [GOLDEN_KEY_ID, '', undefined]) {
        const plaintext = await broker.decrypt(stored, testRequestContext(), keyId);
        assert.equal(Buffer.from(plaintext).toString('utf8'), 'trousseau golden vector: 32 byte');
      }
      await broker.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
