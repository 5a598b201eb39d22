import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { serveProvider, type ProviderKind } from './served-providers.js';
import { runPool } from './pool.js';

// Every single-bit change anywhere in a stored ciphertext must make Decrypt fail: for every built-in
// provider (through its real SDK client against its emulator), on KMS v2 with the right key_id, on KMS v2
// with an empty key_id (which skips the key id check), and on KMS v1beta1. A ciphertext of N bytes costs
// 3 x 8N calls: about 3,700 (local) to 8,200 (azure) per provider. One test file per provider, so that the
// runner spreads them over its workers.

/** How one changed ciphertext was answered: refused with a gRPC status and a Trousseau code, or opened. */
type Answer =
  { readonly refused: true; readonly status: string; readonly code: string } | { readonly refused: false };

function refusal(error: unknown): Answer {
  const failure = error as ServiceError;
  const code = failure.metadata?.get('trousseau-error-code')[0];
  return {
    refused: true,
    status: GrpcStatus[failure.code] ?? String(failure.code),
    code: typeof code === 'string' ? code : '(none)',
  };
}

/** Every ciphertext with exactly one bit changed, by bit index. */
function flips(ciphertext: Buffer): { bit: number; changed: Buffer }[] {
  return Array.from({ length: ciphertext.length * 8 }, (_, bit) => {
    const changed = Buffer.from(ciphertext);
    changed[bit >> 3] = (changed[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    return { bit, changed };
  });
}

/**
 * What a tampered ciphertext may be answered with. The envelope's own checks and the providers' say
 * INVALID_ARGUMENT with a ciphertext code; a changed key reference may name a key that does not exist,
 * which the provider cannot tell from a key that was removed (the local ring, AWS, Azure answer KEY_GONE).
 */
const ACCEPTED = new Set([
  'INVALID_ARGUMENT TROUSSEAU_ERR_CIPHERTEXT_MALFORMED',
  'INVALID_ARGUMENT TROUSSEAU_ERR_CIPHERTEXT_UNSUPPORTED_VERSION',
  'INVALID_ARGUMENT TROUSSEAU_ERR_CIPHERTEXT_UNKNOWN_PROVIDER',
  'INVALID_ARGUMENT TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH',
  'INVALID_ARGUMENT TROUSSEAU_ERR_CIPHERTEXT_INVALID',
  'FAILED_PRECONDITION TROUSSEAU_ERR_PROVIDER_KEY_GONE',
]);

const CONCURRENCY = 16;

/**
 * Serves `kind`, encrypts a seed with v2 and a DEK with v1beta1, and checks that every copy of those
 * ciphertexts with one bit changed is refused on each path, with an accepted status and code.
 */
export async function assertEveryBitFlipRefused(kind: ProviderKind, t: TestContext): Promise<void> {
  const served = await serveProvider(kind);
  try {
    const { client } = served;
    const seed = randomBytes(32);
    const v2 = await client.encrypt(seed, 'bit-flips');
    const dek = randomBytes(32);
    const v1 = await client.v1Encrypt(dek);
    // Controls: the unchanged ciphertexts open on every path, so a refusal below is the change's doing.
    assert.deepEqual((await client.decrypt({ ciphertext: v2.ciphertext, keyId: v2.key_id })).plaintext, seed);
    assert.deepEqual((await client.decrypt({ ciphertext: v2.ciphertext, keyId: '' })).plaintext, seed);
    assert.deepEqual((await client.v1Decrypt(v1.cipher)).plain, dek);

    const paths = [
      {
        name: 'v2 with key_id',
        cases: flips(v2.ciphertext),
        call: (changed: Buffer) => client.decrypt({ ciphertext: changed, keyId: v2.key_id }),
      },
      {
        name: 'v2 with empty key_id',
        cases: flips(v2.ciphertext),
        call: (changed: Buffer) => client.decrypt({ ciphertext: changed, keyId: '' }),
      },
      {
        name: 'v1beta1',
        cases: flips(v1.cipher),
        call: (changed: Buffer) => client.v1Decrypt(changed),
      },
    ];
    const tally = new Map<string, number>();
    let total = 0;
    for (const path of paths) {
      const opened: number[] = [];
      await runPool(path.cases, CONCURRENCY, async ({ bit, changed }) => {
        const answer: Answer = await path.call(changed).then(() => ({ refused: false }) as const, refusal);
        total++;
        if (!answer.refused) {
          opened.push(bit);
          return;
        }
        const key = `${answer.status} ${answer.code}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
      });
      assert.deepEqual(opened, [], `${kind}, ${path.name}: these changed bits still decrypted`);
    }
    t.diagnostic(
      `${kind}: ${v2.ciphertext.length}-byte v2 and ${v1.cipher.length}-byte v1beta1 ciphertexts, ${total} changed ciphertexts refused: ${[...tally].map(([key, count]) => `${key} x${count}`).join(', ')}`,
    );
    assert.equal(total, (2 * v2.ciphertext.length + v1.cipher.length) * 8);
    for (const key of tally.keys()) assert.ok(ACCEPTED.has(key), `${kind}: unexpected answer ${key}`);
    // The server is unharmed: healthy, and the unchanged ciphertexts still open.
    assert.equal((await client.status()).healthz, 'ok');
    assert.deepEqual((await client.decrypt({ ciphertext: v2.ciphertext, keyId: v2.key_id })).plaintext, seed);
    assert.deepEqual((await client.v1Decrypt(v1.cipher)).plain, dek);
  } finally {
    await served.close();
  }
}
