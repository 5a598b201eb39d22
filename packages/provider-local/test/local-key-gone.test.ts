import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isTrousseauError } from '@trousseau/core';
import { createTestProviderContext, testRequestContext } from '@trousseau/testing';
import { createKeyRingFile, LocalKeyProvider, rotateKeyRingFile } from '../src/index.js';

describe('local provider: the key is gone', () => {
  it('fails a decrypt with KEY_GONE once its key was removed from the ring, naming the key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-gone-'));
    try {
      const keyFile = join(dir, 'keys.json');
      const oldKey = await createKeyRingFile(keyFile);
      const provider = await LocalKeyProvider.open(
        { keyFile, createIfMissing: false },
        createTestProviderContext({ configDir: dir }),
      );
      try {
        const sealed = await provider.encrypt(randomBytes(32), testRequestContext());
        await rotateKeyRingFile(keyFile);
        const ring = JSON.parse(await readFile(keyFile, 'utf8')) as { keys: { id: string }[] };
        ring.keys = ring.keys.filter((key) => key.id !== oldKey);
        await writeFile(keyFile, JSON.stringify(ring));
        const status = await provider.status(testRequestContext());
        assert.ok(status.healthy, 'the current key is fine: nothing to stop');
        await assert.rejects(
          provider.decrypt(
            { ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' },
            testRequestContext(),
          ),
          (error: unknown) => {
            assert.ok(isTrousseauError(error));
            assert.equal(error.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
            assert.equal(error.fault, 'server');
            assert.ok(error.message.includes(oldKey), error.message);
            return true;
          },
        );
      } finally {
        await provider.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
