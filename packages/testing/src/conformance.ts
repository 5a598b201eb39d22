import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isTrousseauError, isValidKeyId, type KeyProvider } from '@trousseau/core';
import { testRequestContext } from './request-context.js';

/** What a provider's test hands to the conformance suite. */
export interface ConformanceSubject {
  readonly provider: KeyProvider;
  /** Makes the backend fail (stop the emulator, seal Vault, corrupt the key file). */
  breakBackend(): Promise<void>;
  /** Undoes {@link breakBackend}. */
  restoreBackend(): Promise<void>;
  /** Releases what the subject started (emulators, temp dirs). The suite closes the provider itself. */
  cleanup?(): Promise<void>;
}

export interface ConformanceOptions {
  /** Size of the plaintexts used; kube-apiserver sends 32-byte keys. */
  readonly plaintextBytes?: number;
  /** Calls in flight at once in the concurrency test. */
  readonly concurrency?: number;
  /** Per-call deadline. */
  readonly timeoutMs?: number;
}

async function expectRejection(
  work: Promise<unknown>,
  fault: 'client' | 'server',
  what: string,
): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(isTrousseauError(error), `${what}: expected a TrousseauError, got ${String(error)}`);
    assert.equal(
      error.fault,
      fault,
      `${what}: expected a ${fault} fault, got ${error.code}: ${error.message}`,
    );
    return true;
  });
}

/**
 * The contract every provider must meet, as node:test cases: round trip, tampered and truncated
 * ciphertexts rejected as client faults, a stable bounded key id that matches encrypt's, status that
 * reflects a failing backend and recovers, concurrent calls, idempotent close.
 */
export function runProviderConformance(
  label: string,
  makeSubject: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = {},
): void {
  const size = options.plaintextBytes ?? 32;
  const concurrency = options.concurrency ?? 32;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(timeoutMs);

  describe(`provider conformance: ${label}`, () => {
    let subject: ConformanceSubject;
    before(async () => {
      subject = await makeSubject();
    });
    after(async () => {
      await subject.provider.close();
      await subject.cleanup?.();
    });

    it('round-trips a data key, with a fresh ciphertext each time', async () => {
      const plaintext = randomBytes(size);
      const first = await subject.provider.encrypt(plaintext, ctx());
      const second = await subject.provider.encrypt(plaintext, ctx());
      assert.ok(first.ciphertext.length > 0);
      assert.notDeepEqual(Buffer.from(first.ciphertext), Buffer.from(second.ciphertext));
      for (const result of [first, second]) {
        const opened = await subject.provider.decrypt(
          { ciphertext: result.ciphertext, keyRef: result.keyRef ?? '' },
          ctx(),
        );
        assert.deepEqual(Buffer.from(opened), plaintext);
      }
    });

    it('reports a stable, bounded key id equal to the one encrypt returns', async () => {
      const status = await subject.provider.status(ctx());
      assert.ok(status.healthy, `expected healthy, got ${JSON.stringify(status)}`);
      assert.ok(isValidKeyId(status.keyId), `key id must be 1..1024 bytes: ${status.keyId}`);
      const again = await subject.provider.status(ctx());
      assert.ok(again.healthy);
      assert.equal(again.keyId, status.keyId, 'key id changed without a key change');
      const result = await subject.provider.encrypt(randomBytes(size), ctx());
      assert.equal(result.keyId, status.keyId);
    });

    it('rejects a tampered ciphertext as a client fault', async () => {
      const result = await subject.provider.encrypt(randomBytes(size), ctx());
      const tampered = Buffer.from(result.ciphertext);
      const middle = Math.floor(tampered.length / 2);
      tampered[middle] = (tampered[middle] ?? 0) ^ 0x01;
      await expectRejection(
        subject.provider.decrypt({ ciphertext: tampered, keyRef: result.keyRef ?? '' }, ctx()),
        'client',
        'tampered',
      );
    });

    it('rejects a truncated ciphertext as a client fault', async () => {
      const result = await subject.provider.encrypt(randomBytes(size), ctx());
      const truncated = Buffer.from(result.ciphertext).subarray(
        0,
        Math.max(1, Math.floor(result.ciphertext.length / 3)),
      );
      await expectRejection(
        subject.provider.decrypt({ ciphertext: truncated, keyRef: result.keyRef ?? '' }, ctx()),
        'client',
        'truncated',
      );
    });

    it('serves concurrent calls, each caller getting its own answer', async () => {
      const plaintexts = Array.from({ length: concurrency }, () => randomBytes(size));
      const results = await Promise.all(
        plaintexts.map((plaintext) => subject.provider.encrypt(plaintext, ctx())),
      );
      const opened = await Promise.all(
        results.map((result) =>
          subject.provider.decrypt({ ciphertext: result.ciphertext, keyRef: result.keyRef ?? '' }, ctx()),
        ),
      );
      opened.forEach((plaintext, index) => assert.deepEqual(Buffer.from(plaintext), plaintexts[index]));
    });

    it('reports a failing backend in status and recovers when it is back', async () => {
      const before = await subject.provider.status(ctx());
      assert.ok(before.healthy);
      await subject.breakBackend();
      try {
        const broken = await subject.provider.status(ctx()).catch((error: unknown) => ({
          healthy: false as const,
          reason: String(error),
        }));
        assert.equal(broken.healthy, false, 'status must report the failing backend');
        assert.ok(!broken.healthy && broken.reason.length > 0, 'an unhealthy status must say why');
      } finally {
        await subject.restoreBackend();
      }
      const after = await subject.provider.status(ctx());
      assert.ok(after.healthy, `expected recovery, got ${JSON.stringify(after)}`);
      const result = await subject.provider.encrypt(randomBytes(size), ctx());
      assert.ok(result.ciphertext.length > 0);
    });

    it('closes idempotently and refuses calls afterwards', async () => {
      const fresh = await makeSubject();
      try {
        await fresh.provider.close();
        await fresh.provider.close();
        await assert.rejects(fresh.provider.encrypt(randomBytes(size), ctx()));
      } finally {
        await fresh.cleanup?.();
      }
    });
  });
}
