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

describe('local provider golden vector (forever-format)', () => {
  it('decrypts a stored ciphertext of format version 1 through the broker, with its key id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      const keyFile = join(dir, 'keys.json');
      await writeFile(
        keyFile,
        JSON.stringify({
          version: 1,
          current: 'golden-key-1',
          keys: [{ id: 'golden-key-1', material: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=' }],
        }),
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
      const stored = Buffer.from(
        '54525301096c6f63616c2d646576b5ccf037bfabcd940c676f6c64656e2d6b65792d31' +
          '000102030405060708090a0b3370b96eb696a77af861f0e4dd8d1d03a3a0e25784142d461854d7a57f1074d7d2a94b2921cc33cd91267c527689a351',
        'hex',
      );
      const plaintext = await broker.decrypt(
        stored,
        testRequestContext(),
        'local:golden-key-1:4ff9abfcabfb4d10',
      );
      assert.equal(Buffer.from(plaintext).toString('utf8'), 'trousseau golden vector: 32 byte');
      const status = await provider.status(testRequestContext());
      assert.ok(status.healthy);
      assert.equal(
        status.keyId,
        'local:golden-key-1:4ff9abfcabfb4d10',
        'the local key id format is stable too',
      );
      await broker.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
