import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KeyProvider } from '@trousseau/core';
import {
  createTestProviderContext,
  FileBackend,
  runProviderConformance,
  testRequestContext,
} from '@trousseau/testing';
import example from '../src/index.js';

/** A provider over a passphrase file in a fresh directory, made as the server makes it. */
async function openExample(lines: readonly string[]): Promise<{
  provider: KeyProvider;
  file: FileBackend;
  dir: string;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-example-'));
  const path = join(dir, 'passphrase');
  await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
  const provider = await example.create(
    { passphrase: { file: 'passphrase' } },
    createTestProviderContext({ instanceName: 'example', configDir: dir }),
  );
  return { provider, file: new FileBackend(path), dir };
}

const newPassphrase = (): string => randomBytes(18).toString('base64');

// A provider author runs the same conformance suite on their provider, with every hook. The example's
// backend is its passphrase file: breaking it removes the file, holding it makes reads of the file hang,
// rotating appends a passphrase. Its keys live in memory, so calls keep working while the file is gone.
runProviderConformance('example (third-party)', async () => {
  const { provider, file, dir } = await openExample([newPassphrase()]);
  let saved: string | undefined;
  return {
    provider,
    servesWhileBackendDown: true,
    async breakBackend() {
      saved ??= await file.read();
      await file.write(undefined);
    },
    async restoreBackend() {
      if (saved !== undefined) await file.write(saved);
      saved = undefined;
      await file.restore();
    },
    async rotateKey() {
      await file.write(`${(await file.read()) ?? ''}${newPassphrase()}\n`);
    },
    holdBackend: () => file.hold(),
    releaseBackend: () => file.release(),
    backendRequests: () => file.reads,
    async cleanup() {
      await file.restore();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('example provider', () => {
  const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(15_000);

  it('still decrypts after a restart with a rotated file, and refuses to go back to an older passphrase', async () => {
    const first = newPassphrase();
    const second = newPassphrase();
    const { provider, file, dir } = await openExample([first]);
    try {
      const plaintext = randomBytes(32);
      const old = await provider.encrypt(plaintext, ctx());
      await file.write(`${first}\n${second}\n`);
      const rotated = await provider.status(ctx());
      assert.ok(rotated.healthy, JSON.stringify(rotated));
      assert.notEqual(rotated.keyId, old.keyId);
      await provider.close();

      // What an operator does after a restart: the file keeps both lines; both key versions decrypt.
      const restarted = await example.create(
        { passphrase: { file: 'passphrase' } },
        createTestProviderContext({ configDir: dir }),
      );
      try {
        const status = await restarted.status(ctx());
        assert.ok(status.healthy && status.keyId === rotated.keyId, JSON.stringify(status));
        const opened = await restarted.decrypt(
          { ciphertext: old.ciphertext, keyRef: old.keyRef ?? '' },
          ctx(),
        );
        assert.deepEqual(Buffer.from(opened), plaintext);

        // Putting the older passphrase last would bring an earlier key id back: refused, key id kept.
        await file.write(`${second}\n${first}\n`);
        const back = await restarted.status(ctx());
        assert.ok(!back.healthy && back.keyId === rotated.keyId, JSON.stringify(back));
        assert.equal((await restarted.encrypt(plaintext, ctx())).keyId, rotated.keyId);

        // Removing a passphrase is reported while it can still be undone; its data still decrypts now.
        await file.write(`${second}\n`);
        const removed = await restarted.status(ctx());
        assert.ok(!removed.healthy && /removed from the file/.test(removed.reason), JSON.stringify(removed));
        assert.deepEqual(
          Buffer.from(
            await restarted.decrypt({ ciphertext: old.ciphertext, keyRef: old.keyRef ?? '' }, ctx()),
          ),
          plaintext,
        );
      } finally {
        await restarted.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a ciphertext stored with another key version of the file (the key reference is bound)', async () => {
    const first = newPassphrase();
    const { provider, file, dir } = await openExample([first]);
    try {
      const old = await provider.encrypt(randomBytes(32), ctx());
      await file.write(`${first}\n${newPassphrase()}\n`);
      await provider.status(ctx());
      const fresh = await provider.encrypt(randomBytes(32), ctx());
      assert.notEqual(fresh.keyRef, old.keyRef);
      await assert.rejects(
        provider.decrypt({ ciphertext: old.ciphertext, keyRef: fresh.keyRef ?? '' }, ctx()),
        (error: Error & { code?: string }) => error.code === 'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
      );
    } finally {
      await provider.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails to start, saying why, when the passphrase file holds no passphrase', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-example-'));
    try {
      await writeFile(join(dir, 'passphrase'), '# rotate by appending a line\n\n');
      await assert.rejects(
        async () =>
          example.create(
            { passphrase: { file: 'passphrase' } },
            createTestProviderContext({ configDir: dir }),
          ),
        /holds no passphrase/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
