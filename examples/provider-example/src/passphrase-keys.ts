// How the example turns passphrases into keys: each line of the passphrase file is one key version,
// derived once, asynchronously, with scrypt (a slow function on purpose: never run it per call, and never
// with scryptSync, which would stop the event loop and every call with it).
import { createHash, createHmac, scrypt } from 'node:crypto';

/** Salt of the key derivation; changing it would change every key, so it never changes. */
const SALT = 'trousseau-provider-example/v1';

/** A key version: the AES-256 key of one passphrase and its reference. */
export interface PassphraseKey {
  /**
   * Names the key in every envelope it makes (the provider's `keyRef`): a fingerprint of the key, so a
   * line of the file keeps its reference wherever it moves, and no two passphrases share one.
   */
  readonly ref: string;
  readonly key: Buffer;
}

/** The passphrases of a file: one per line, oldest first; blank lines and `#` comments are skipped. */
export function parsePassphrases(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function deriveKey(passphrase: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, SALT, 32, (error, key) => (error === null ? resolve(key) : reject(error)));
  });
}

/**
 * Derives each passphrase's key once: later calls with the same passphrase share the first derivation.
 * Keeps only a digest of each passphrase, as the map key.
 */
export class PassphraseKeys {
  readonly #derived = new Map<string, Promise<PassphraseKey>>();

  get(passphrase: string): Promise<PassphraseKey> {
    const digest = createHash('sha256').update(passphrase).digest('base64');
    let derived = this.#derived.get(digest);
    if (derived === undefined) {
      derived = deriveKey(passphrase).then((key) => ({
        ref: createHmac('sha256', key)
          .update('trousseau-provider-example key reference')
          .digest('hex')
          .slice(0, 16),
        key,
      }));
      // A failed derivation is tried again next time rather than remembered.
      void derived.catch(() => this.#derived.delete(digest));
      this.#derived.set(digest, derived);
    }
    return derived;
  }
}
