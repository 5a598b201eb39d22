import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { isTrousseauError } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import { usingRealVault } from './backend.js';
import { tokenAuth, useVaultBackend } from './helpers.js';

const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(5_000);

/** A well-formed Vault ciphertext whose body was altered: Vault itself must refuse it. */
function tampered(ciphertext: Uint8Array): Buffer {
  const text = Buffer.from(ciphertext).toString('utf8');
  const body = Buffer.from(text.slice(text.lastIndexOf(':') + 1), 'base64');
  body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0x01;
  return Buffer.from(`${text.slice(0, text.lastIndexOf(':') + 1)}${body.toString('base64')}`, 'utf8');
}

for (const batchPartialFailureStatus of [200, 400] as const) {
  describe(`vault batching (partial failure answered ${batchPartialFailureStatus})`, () => {
    const vault = useVaultBackend({ emulator: { batchPartialFailureStatus }, shareClock: false });
    let auth: Record<string, unknown>;
    before(async () => {
      ({ auth } = await tokenAuth(vault.backend, vault.fixture));
    });

    it(
      'sends a lone call at once, alone, not as a batch',
      { skip: usingRealVault ? 'needs the request log' : false },
      async () => {
        const emulator = vault.backend.emulator;
        assert.ok(emulator !== undefined);
        const provider = await vault.fixture.open({ auth });
        try {
          await provider.status(ctx());
          emulator.clearRequests();
          const result = await provider.encrypt(randomBytes(32), ctx());
          await provider.decrypt({ ciphertext: result.ciphertext, keyRef: '' }, ctx());
          const transit = emulator.requests.filter((request) =>
            /\/transit\/(en|de)crypt\//.test(request.path),
          );
          assert.equal(transit.length, 2);
          assert.ok(
            transit.every((request) => request.batchSize === undefined),
            JSON.stringify(transit),
          );
        } finally {
          await provider.close();
        }
      },
    );

    it('coalesces concurrent calls into bounded batches; each caller gets its own answer or error', async () => {
      const emulator = vault.backend.emulator;
      if (emulator !== undefined) emulator.faults.latencyMs = 5;
      const provider = await vault.fixture.open({ auth, batching: { maxBatchSize: 8 } });
      try {
        const plaintexts = Array.from({ length: 40 }, () => randomBytes(32));
        emulator?.clearRequests();
        const sealed = await Promise.all(plaintexts.map((plaintext) => provider.encrypt(plaintext, ctx())));
        const inputs = sealed.map((result, index) => ({
          ciphertext: index % 3 === 0 ? tampered(result.ciphertext) : Buffer.from(result.ciphertext),
          expected: index % 3 === 0 ? undefined : plaintexts[index],
        }));
        const outcomes = await Promise.allSettled(
          inputs.map((input) => provider.decrypt({ ciphertext: input.ciphertext, keyRef: '' }, ctx())),
        );
        outcomes.forEach((outcome, index) => {
          const expected = inputs[index]?.expected;
          if (expected === undefined) {
            assert.equal(outcome.status, 'rejected', `item ${index} must fail`);
            const reason: unknown = outcome.status === 'rejected' ? outcome.reason : undefined;
            assert.ok(
              isTrousseauError(reason) && reason.code === 'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
              String(reason),
            );
          } else {
            assert.equal(outcome.status, 'fulfilled', `item ${index}: ${JSON.stringify(outcome)}`);
            assert.deepEqual(
              outcome.status === 'fulfilled' ? Buffer.from(outcome.value) : undefined,
              expected,
            );
          }
        });
        const sizes = vault.fixture.metrics.observations
          .filter((entry) => entry.name === 'provider_batch_size' && entry.labels.provider === 'vault-test')
          .map((entry) => entry.value);
        assert.ok(
          sizes.some((size) => size > 1),
          'some calls were coalesced',
        );
        assert.ok(
          sizes.every((size) => size <= 8),
          'batches stay within maxBatchSize',
        );
        if (emulator !== undefined) {
          const batched = emulator.requests.filter((request) => request.batchSize !== undefined);
          assert.ok(batched.length > 0);
          assert.ok(
            batched.every((request) => (request.batchSize ?? 0) <= 8 && (request.batchSize ?? 0) > 1),
          );
          const decrypts = emulator.requests.filter((request) => request.path.includes('/transit/decrypt/'));
          assert.ok(
            decrypts.length < inputs.length,
            `${decrypts.length} requests for ${inputs.length} calls`,
          );
        }
      } finally {
        if (emulator !== undefined) emulator.faults.latencyMs = 0;
        await provider.close();
      }
    });

    it('maps per-item min_decryption_version refusals to their callers', async () => {
      const name = `${vault.fixture.keyName}-min`;
      await vault.backend.createKey(name);
      await vault.backend.writePolicy(`${vault.fixture.policy}-min`, [
        { path: `${vault.backend.transitMount}/encrypt/${name}`, capabilities: ['update'] },
        { path: `${vault.backend.transitMount}/decrypt/${name}`, capabilities: ['update'] },
        { path: `${vault.backend.transitMount}/keys/${name}`, capabilities: ['read'] },
      ]);
      const token = await vault.backend.createToken({ policies: [`${vault.fixture.policy}-min`] });
      const emulator = vault.backend.emulator;
      const provider = await vault.fixture.open({
        auth: { method: 'token', token: { file: await vault.fixture.writeFile('min-token', token) } },
        keyName: name,
      });
      try {
        const oldPlain = Array.from({ length: 6 }, () => randomBytes(32));
        const old = await Promise.all(oldPlain.map((plaintext) => provider.encrypt(plaintext, ctx())));
        await vault.backend.rotateKey(name);
        const newPlain = Array.from({ length: 6 }, () => randomBytes(32));
        const fresh = await Promise.all(newPlain.map((plaintext) => provider.encrypt(plaintext, ctx())));
        await vault.backend.setMinDecryptionVersion(name, 2);
        if (emulator !== undefined) emulator.faults.latencyMs = 5;
        const outcomes = await Promise.allSettled(
          [...old, ...fresh].map((result) =>
            provider.decrypt({ ciphertext: result.ciphertext, keyRef: '' }, ctx()),
          ),
        );
        outcomes.slice(0, 6).forEach((outcome) => {
          assert.equal(outcome.status, 'rejected');
          const reason: unknown = outcome.status === 'rejected' ? outcome.reason : undefined;
          assert.ok(
            isTrousseauError(reason) && reason.code === 'TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE',
            String(reason),
          );
        });
        outcomes.slice(6).forEach((outcome, index) => {
          assert.equal(outcome.status, 'fulfilled');
          assert.deepEqual(
            outcome.status === 'fulfilled' ? Buffer.from(outcome.value) : undefined,
            newPlain[index],
          );
        });
      } finally {
        if (emulator !== undefined) emulator.faults.latencyMs = 0;
        await provider.close();
      }
    });

    it(
      'sends every call alone when batching is off',
      { skip: usingRealVault ? 'needs the request log' : false },
      async () => {
        const emulator = vault.backend.emulator;
        assert.ok(emulator !== undefined);
        emulator.faults.latencyMs = 5;
        const provider = await vault.fixture.open({ auth, batching: { enabled: false } });
        try {
          await provider.status(ctx());
          emulator.clearRequests();
          await Promise.all(Array.from({ length: 12 }, () => provider.encrypt(randomBytes(32), ctx())));
          const encrypts = emulator.requests.filter((request) => request.path.includes('/transit/encrypt/'));
          assert.equal(encrypts.length, 12);
          assert.ok(encrypts.every((request) => request.batchSize === undefined));
        } finally {
          emulator.faults.latencyMs = 0;
          await provider.close();
        }
      },
    );
  });
}
