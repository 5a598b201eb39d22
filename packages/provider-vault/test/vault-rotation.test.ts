import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { isTrousseauError, isValidKeyId } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import { usingRealVault } from './backend.js';
import { eventually, tokenAuth, useVaultBackend } from './helpers.js';

function prefixOf(ciphertext: Uint8Array): string {
  return /^vault:v\d+:/.exec(Buffer.from(ciphertext).toString('utf8'))?.[0] ?? '';
}

describe('vault key rotation', () => {
  const vault = useVaultBackend();
  const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(3_000, undefined, vault.clock);

  it('changes the key id within the refresh interval; new data is v2 and v1 data still decrypts', async () => {
    const { auth } = await tokenAuth(vault.backend, vault.fixture);
    const provider = await vault.fixture.open({ auth, keyRefreshIntervalSeconds: 0.1 });
    try {
      const first = await provider.status(ctx());
      assert.ok(first.healthy);
      assert.match(
        first.keyId,
        new RegExp(`^vault:${vault.backend.transitMount}/${vault.fixture.keyName}:v1:[0-9a-f]{16}$`),
      );
      const plaintext = randomBytes(32);
      const old = await provider.encrypt(plaintext, ctx());
      assert.equal(prefixOf(old.ciphertext), 'vault:v1:');
      assert.equal(old.keyRef, undefined, 'the Vault ciphertext names its version; no key reference');

      await vault.backend.rotateKey(vault.fixture.keyName);
      // The background refresh alone (no call) notices the rotation.
      await eventually(() => provider.keyId !== first.keyId);
      const second = await provider.status(ctx());
      assert.ok(second.healthy);
      assert.notEqual(second.keyId, first.keyId);
      assert.match(second.keyId, /:v2:/);
      assert.ok(isValidKeyId(second.keyId));

      const fresh = await provider.encrypt(plaintext, ctx());
      assert.equal(prefixOf(fresh.ciphertext), 'vault:v2:');
      assert.equal(fresh.keyId, second.keyId);
      for (const sealed of [old, fresh]) {
        assert.deepEqual(
          Buffer.from(await provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, ctx())),
          plaintext,
        );
      }

      await vault.backend.setMinDecryptionVersion(vault.fixture.keyName, 2);
      await assert.rejects(
        provider.decrypt({ ciphertext: old.ciphertext, keyRef: '' }, ctx()),
        (error: unknown) => {
          assert.ok(isTrousseauError(error));
          assert.equal(error.code, 'TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE');
          assert.match(error.message, /min_decryption_version/);
          return true;
        },
      );
      assert.deepEqual(
        Buffer.from(await provider.decrypt({ ciphertext: fresh.ciphertext, keyRef: '' }, ctx())),
        plaintext,
      );
    } finally {
      await provider.close();
    }
  });

  it('reads the key on demand when an encrypt comes back under a newer version', async () => {
    const { auth } = await tokenAuth(vault.backend, vault.fixture);
    const provider = await vault.fixture.open({ auth, keyRefreshIntervalSeconds: 60 });
    try {
      const before = await provider.status(ctx());
      assert.ok(before.healthy);
      await vault.backend.rotateKey(vault.fixture.keyName);
      const result = await provider.encrypt(randomBytes(32), ctx());
      assert.notEqual(result.keyId, before.keyId, 'encrypt must not report the old key id with new data');
      const after = await provider.status(ctx());
      assert.ok(after.healthy);
      assert.equal(result.keyId, after.keyId);
    } finally {
      await provider.close();
    }
  });

  it(
    'keeps the newest key id when a read answers an older key state, but follows a re-created key',
    { skip: usingRealVault ? 'needs the emulator' : false },
    async () => {
      const emulator = vault.backend.emulator;
      assert.ok(emulator !== undefined);
      const name = `${vault.fixture.keyName}-lagging`;
      emulator.createKey(name);
      emulator.writePolicy(`${vault.fixture.policy}-lagging`, [
        { path: `transit/encrypt/${name}`, capabilities: ['update'] },
        { path: `transit/decrypt/${name}`, capabilities: ['update'] },
        { path: `transit/keys/${name}`, capabilities: ['read'] },
      ]);
      const token = emulator.createToken({ policies: [`${vault.fixture.policy}-lagging`] });
      const provider = await vault.fixture.open({
        auth: { method: 'token', token: { file: await vault.fixture.writeFile('lagging-token', token) } },
        keyName: name,
        keyRefreshIntervalSeconds: 60,
      });
      try {
        const first = await provider.status(ctx());
        assert.ok(first.healthy);
        assert.match(first.keyId, /:v1:/);
        emulator.rotateKey(name);
        const rotated = await provider.status(ctx());
        assert.ok(rotated.healthy);
        assert.match(rotated.keyId, /:v2:/);

        // A standby behind the active node answers the key as it was at v1: the id must not go back.
        emulator.serveStaleKeyReads(name, 1);
        const lagging = await provider.status(ctx());
        assert.ok(lagging.healthy);
        assert.equal(lagging.keyId, rotated.keyId, 'the key id went back to an older one');
        const sealed = await provider.encrypt(randomBytes(32), ctx());
        assert.equal(prefixOf(sealed.ciphertext), 'vault:v2:');
        assert.equal(sealed.keyId, rotated.keyId);
        assert.ok(
          vault.fixture.logger.lines.some(
            (line) => line.includes('"level":"warn"') && line.includes('older state of the key'),
          ),
          'the stale read is logged at warn',
        );
        emulator.serveStaleKeyReads(name, undefined);

        // Deleted and re-created: a lower version, but another key: the id must change.
        vault.clock.advance(2_000);
        emulator.deleteKey(name);
        emulator.createKey(name);
        const recreated = await provider.status(ctx());
        assert.ok(recreated.healthy);
        assert.match(recreated.keyId, /:v1:/);
        assert.notEqual(recreated.keyId, first.keyId);
        assert.notEqual(recreated.keyId, rotated.keyId);
      } finally {
        await provider.close();
      }
    },
  );

  it(
    'never repeats a key id for a re-created key of the same name and version',
    { skip: usingRealVault ? 'needs the emulator' : false },
    async () => {
      const emulator = vault.backend.emulator;
      assert.ok(emulator !== undefined);
      const name = `${vault.fixture.keyName}-again`;
      emulator.createKey(name);
      emulator.writePolicy(vault.fixture.policy, [
        { path: `transit/encrypt/${name}`, capabilities: ['update'] },
        { path: `transit/decrypt/${name}`, capabilities: ['update'] },
        { path: `transit/keys/${name}`, capabilities: ['read'] },
      ]);
      const { auth } = await tokenAuth(vault.backend, vault.fixture);
      const provider = await vault.fixture.open({ auth, keyName: name });
      try {
        const first = await provider.status(ctx());
        assert.ok(first.healthy);
        emulator.deleteKey(name);
        const gone = await provider.status(ctx());
        assert.equal(gone.healthy, false);
        assert.ok(
          !gone.healthy &&
            gone.code === 'TROUSSEAU_ERR_PROVIDER_KEY_GONE' &&
            /key not found/.test(gone.reason),
        );
        vault.clock.advance(2_000);
        emulator.createKey(name);
        const again = await provider.status(ctx());
        assert.ok(again.healthy);
        assert.match(again.keyId, /:v1:/);
        assert.notEqual(again.keyId, first.keyId);
      } finally {
        await provider.close();
      }
    },
  );
});
