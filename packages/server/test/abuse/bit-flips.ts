import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { serveProvider, type ProviderKind, type ServedProvider } from './served-providers.js';
import { runPool } from './pool.js';

// Every single-bit change anywhere in a stored ciphertext must make Decrypt fail: for every built-in
// provider (through its real SDK client against its emulator), on KMS v2 with the right key_id, on KMS v2
// with an empty key_id (which skips the key id check), and on KMS v1beta1. A ciphertext of N bytes costs
// 3 x 8N calls: about 3,700 (local) to 8,200 (azure) per provider. One test file per provider, so that the
// runner spreads them over its workers, and one test per path, each with its own time bound.

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

/** The time one path of one provider may take on a loaded machine; 2,700 calls take about 40 s alone. */
const PATH_TIMEOUT_MS = 300_000;

/**
 * The suite for one provider: serves it, encrypts a seed with v2 and a DEK with v1beta1, and checks on
 * each path that every copy of those ciphertexts with one bit changed is refused, with an accepted status
 * and code; then that the server is unharmed.
 */
export function bitFlipSuite(kind: ProviderKind): void {
  describe(`abuse: every single-bit change of a real ${kind} ciphertext is refused`, () => {
    let served: ServedProvider;
    const seed = randomBytes(32);
    const dek = randomBytes(32);
    let v2: { ciphertext: Buffer; key_id: string } = { ciphertext: Buffer.alloc(0), key_id: '' };
    let v1: Buffer = Buffer.alloc(0);
    before(async () => {
      served = await serveProvider(kind);
      v2 = await served.client.encrypt(seed, 'bit-flips');
      v1 = (await served.client.v1Encrypt(dek)).cipher;
      // Controls: the unchanged ciphertexts open on every path, so a refusal below is the change's doing.
      const { client } = served;
      assert.deepEqual(
        (await client.decrypt({ ciphertext: v2.ciphertext, keyId: v2.key_id })).plaintext,
        seed,
      );
      assert.deepEqual((await client.decrypt({ ciphertext: v2.ciphertext, keyId: '' })).plaintext, seed);
      assert.deepEqual((await client.v1Decrypt(v1)).plain, dek);
    });
    after(() => served?.close());

    const paths: { name: string; original: () => Buffer; call: (changed: Buffer) => Promise<unknown> }[] = [
      {
        name: 'KMS v2 with the right key_id',
        original: () => v2.ciphertext,
        call: (changed) => served.client.decrypt({ ciphertext: changed, keyId: v2.key_id }),
      },
      {
        name: 'KMS v2 with an empty key_id',
        original: () => v2.ciphertext,
        call: (changed) => served.client.decrypt({ ciphertext: changed, keyId: '' }),
      },
      {
        name: 'KMS v1beta1',
        original: () => v1,
        call: (changed) => served.client.v1Decrypt(changed),
      },
    ];
    for (const path of paths) {
      it(`${kind}, ${path.name}`, { timeout: PATH_TIMEOUT_MS }, async (t) => {
        const cases = flips(path.original());
        const tally = new Map<string, number>();
        const opened: number[] = [];
        await runPool(cases, CONCURRENCY, async ({ bit, changed }) => {
          const answer: Answer = await path.call(changed).then(() => ({ refused: false }) as const, refusal);
          if (!answer.refused) {
            opened.push(bit);
            return;
          }
          const key = `${answer.status} ${answer.code}`;
          tally.set(key, (tally.get(key) ?? 0) + 1);
        });
        t.diagnostic(
          `${cases.length} changed copies of a ${path.original().length}-byte ciphertext: ${[...tally].map(([key, count]) => `${key} x${count}`).join(', ')}`,
        );
        assert.deepEqual(opened, [], 'these changed bits still decrypted');
        assert.equal(
          [...tally.values()].reduce((sum, count) => sum + count, 0),
          cases.length,
        );
        for (const key of tally.keys()) assert.ok(ACCEPTED.has(key), `unexpected answer ${key}`);
      });
    }

    it(`${kind}: the server is unharmed: healthy, and the unchanged ciphertexts still open`, async () => {
      const { client } = served;
      assert.equal((await client.status()).healthz, 'ok');
      assert.deepEqual(
        (await client.decrypt({ ciphertext: v2.ciphertext, keyId: v2.key_id })).plaintext,
        seed,
      );
      assert.deepEqual((await client.v1Decrypt(v1)).plain, dek);
    });
  });
}
