import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  createSecretReader,
  noopMetrics,
  silentLogger,
  systemClock,
  type ProviderContext,
} from '@trousseau/core';
import { runProviderConformance, testRequestContext } from '@trousseau/testing';
import { createKeyRingFile, LocalKeyProvider, rotateKeyRingFile } from '../src/index.js';

function contextFor(dir: string): ProviderContext {
  return {
    instanceName: 'local',
    logger: silentLogger,
    metrics: noopMetrics,
    clock: systemClock,
    configDir: dir,
    secrets: createSecretReader(dir),
  };
}

runProviderConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
  const keyFile = join(dir, 'keys.json');
  await createKeyRingFile(keyFile);
  const original = await readFile(keyFile, 'utf8');
  const provider = await LocalKeyProvider.open(
    { keyFile: 'keys.json', createIfMissing: false },
    contextFor(dir),
  );
  return {
    provider,
    breakBackend: () => writeFile(keyFile, '{ not json'),
    restoreBackend: () => writeFile(keyFile, original),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

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

  it('changes the key id on rotation and still decrypts data of older keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
    try {
      const keyFile = join(dir, 'keys.json');
      await createKeyRingFile(keyFile);
      const provider = await LocalKeyProvider.open({ keyFile, createIfMissing: false }, contextFor(dir));
      const before = await provider.status(testRequestContext());
      assert.ok(before.healthy);
      const plaintext = randomBytes(32);
      const old = await provider.encrypt(plaintext, testRequestContext());
      await rotateKeyRingFile(keyFile);
      const after = await provider.status(testRequestContext());
      assert.ok(after.healthy);
      assert.notEqual(after.keyId, before.keyId);
      const fresh = await provider.encrypt(plaintext, testRequestContext());
      assert.equal(fresh.keyId, after.keyId);
      assert.notEqual(fresh.keyRef, old.keyRef);
      const opened = await provider.decrypt(
        { ciphertext: old.ciphertext, keyRef: old.keyRef ?? '' },
        testRequestContext(),
      );
      assert.deepEqual(Buffer.from(opened), plaintext);
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
