import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { decodeEnvelope, encodeEnvelope } from '@trousseau/core';
import { heapCensus, MiB, retainedSince } from './memory.js';
import { runPool } from './pool.js';
import { serveProvider, type ProviderKind } from './served-providers.js';

// The key reference in an envelope header is the caller's to choose (a version 1 header carries no tag,
// and a version 2 tag is checked only after the provider answered). A provider that keeps something per
// key reference it is asked about can be made to grow without end (the Azure provider kept a
// CryptographyClient for each: 1,000 forged references left 1,000 more live). This sends a thousand
// distinct forged references, checks that every one is refused, that no class of object gained an
// instance per reference, and that the server retains no more than before.

const FORGED = 1_000;

/** A key reference of the provider's own form that names no existing key. */
const FORGERIES: Partial<Record<ProviderKind, () => string>> = {
  azure: () => `k${randomBytes(6).toString('hex')}/${randomBytes(16).toString('hex')}/RSA-OAEP-256`,
  awskms: () => `arn:aws:kms:us-east-1:111122223333:key/${randomBytes(16).toString('hex')}`,
};

describe('abuse: forged key references', () => {
  for (const [kind, forge] of Object.entries(FORGERIES) as [ProviderKind, () => string][]) {
    it(
      `${kind}: ${FORGED} distinct forged key references are refused and retain no memory`,
      { timeout: 240_000 },
      async (t) => {
        const served = await serveProvider(kind);
        try {
          const good = await served.client.encrypt(randomBytes(32));
          const { payload } = decodeEnvelope(good.ciphertext);
          const forged = Array.from({ length: FORGED }, () =>
            encodeEnvelope({ instance: kind, keyId: good.key_id, keyRef: forge(), payload }),
          );
          const before = await heapCensus();
          const answers = new Map<string, number>();
          await runPool(forged, 16, async (ciphertext) => {
            // kube-apiserver's default deadline: what a provider holds until then (the AWS provider's
            // AbortSignal.timeout) is let go by then.
            const answer = await served.client.v1Decrypt(ciphertext, 3_000).then(
              () => 'OK',
              (error: ServiceError) => GrpcStatus[error.code] ?? String(error.code),
            );
            answers.set(answer, (answers.get(answer) ?? 0) + 1);
          });
          // What is held only until the calls' deadlines pass goes by itself; what is kept stays.
          const retained = await retainedSince(before, { maxBytes: 8 * MiB, maxInstances: FORGED / 2 });
          t.diagnostic(
            `answers ${JSON.stringify(Object.fromEntries(answers))}; retained ${(retained.bytes / MiB).toFixed(1)} MiB more`,
          );
          assert.equal(answers.get('OK'), undefined, 'a forged key reference opened a ciphertext');
          assert.deepEqual(retained.grown, [], 'objects kept per forged key reference');
          assert.ok(
            retained.bytes < 8 * MiB,
            `retained ${(retained.bytes / MiB).toFixed(1)} MiB more after ${FORGED} forged references`,
          );
          assert.equal((await served.client.status()).healthz, 'ok');
        } finally {
          await served.close();
        }
      },
    );
  }
});
