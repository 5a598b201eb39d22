// A minimal third-party Trousseau provider, written the way an outside author would: it depends on
// @trousseau/core as a peer, validates its options with zod, and exports its definition as default.
// It encrypts with AES-256-GCM under a key derived (scrypt) from a passphrase file: fine for learning
// the contract, not a substitute for a real KMS.
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import {
  defineProvider,
  keyIdDigest,
  secretRefSchema,
  TrousseauError,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderStatus,
  type SecretReader,
  type SecretRef,
} from '@trousseau/core';
import { z } from 'zod';

const optionsSchema = z.strictObject({
  /** Where the passphrase comes from: `{ file: path }` or `{ env: NAME }`. */
  passphrase: secretRefSchema,
});

function deriveKey(passphrase: string): Buffer {
  return scryptSync(passphrase, 'trousseau-provider-example', 32);
}

class ExampleProvider implements KeyProvider {
  readonly #key: Buffer;
  readonly #keyId: string;
  readonly #secrets: SecretReader;
  readonly #passphrase: SecretRef;
  #closed = false;

  constructor(key: Buffer, secrets: SecretReader, passphrase: SecretRef) {
    this.#key = key;
    this.#keyId = `example:${keyIdDigest([key.toString('base64')])}`;
    this.#secrets = secrets;
    this.#passphrase = passphrase;
  }

  async encrypt(plaintext: Uint8Array): Promise<EncryptResult> {
    this.#assertOpen();
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]), keyId: this.#keyId };
  }

  async decrypt(input: DecryptInput): Promise<Uint8Array> {
    this.#assertOpen();
    const data = Buffer.from(input.ciphertext);
    if (data.length < 29)
      throw new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', 'ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, data.subarray(0, 12));
    decipher.setAuthTag(data.subarray(data.length - 16));
    try {
      return Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
    } catch (error) {
      throw new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', 'ciphertext failed authentication', {
        cause: error,
      });
    }
  }

  /** The example's "backend" is its passphrase: status checks it still reads and still gives our key. */
  async status(): Promise<ProviderStatus> {
    this.#assertOpen();
    let passphrase: string;
    try {
      passphrase = await this.#secrets.read(this.#passphrase);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { healthy: false, reason: `passphrase unavailable: ${reason}`, keyId: this.#keyId };
    }
    if (!deriveKey(passphrase).equals(this.#key)) {
      return { healthy: false, reason: 'passphrase changed; restart to use the new key', keyId: this.#keyId };
    }
    return { healthy: true, keyId: this.#keyId };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'example provider is closed');
  }
}

export default defineProvider({
  name: 'example',
  coreRange: '^1.0.0',
  configSchema: optionsSchema,
  create: async (options, context) =>
    new ExampleProvider(
      deriveKey(await context.secrets.read(options.passphrase)),
      context.secrets,
      options.passphrase,
    ),
});
