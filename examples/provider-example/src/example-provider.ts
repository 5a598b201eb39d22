// The example's key provider: AES-256-GCM under keys derived from a passphrase file, one key version per
// line. The last line encrypts; every line decrypts, so a passphrase change never makes older data
// unreadable: an operator appends a new passphrase, and keeps the older lines for as long as data made
// with them may exist (in etcd: until every Secret has been rewritten).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  abortError,
  raceAbort,
  TrousseauError,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderStatus,
  type RequestContext,
  type SecretReader,
  type SecretRef,
} from '@trousseau/core';
import { parsePassphrases, type PassphraseKey, type PassphraseKeys } from './passphrase-keys.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Binds each ciphertext to the key reference it is stored with. */
function associatedData(ref: string): Buffer {
  return Buffer.from(`trousseau-provider-example/v1/${ref}`, 'utf8');
}

function keyIdOf(ref: string): string {
  return `example:${ref}`;
}

/** The file's keys: every line's key, and the last line's (the one that encrypts). */
interface FileKeys {
  readonly keys: readonly PassphraseKey[];
  readonly newest: PassphraseKey;
}

/** Reads the passphrase file and derives the keys of lines not seen before. */
export async function readFileKeys(
  secrets: SecretReader,
  passphrase: SecretRef,
  derive: PassphraseKeys,
): Promise<FileKeys> {
  const lines = parsePassphrases(await secrets.read(passphrase));
  const keys = await Promise.all(lines.map((line) => derive.get(line)));
  const newest = keys.at(-1);
  if (newest === undefined) {
    throw new TrousseauError('TROUSSEAU_ERR_CONFIG_INVALID', 'the passphrase file holds no passphrase');
  }
  return { keys, newest };
}

/**
 * Keys live in memory: encrypt and decrypt never touch the file. `status()` re-reads the file (the
 * "backend" of this example), picks up a new last line as the new current key (the key id changes, which
 * is how kube-apiserver learns of the rotation), and keeps every key it has seen.
 */
export class ExampleProvider implements KeyProvider {
  readonly #secrets: SecretReader;
  readonly #passphrase: SecretRef;
  readonly #derive: PassphraseKeys;
  /** Every key version seen since start, by reference; never shrinks while running. */
  readonly #keys = new Map<string, Buffer>();
  #current: PassphraseKey;
  /** The read of the file in progress, shared by concurrent status checks. */
  #reading: Promise<FileKeys> | undefined;
  #closed = false;

  constructor(initial: FileKeys, secrets: SecretReader, passphrase: SecretRef, derive: PassphraseKeys) {
    for (const key of initial.keys) this.#keys.set(key.ref, key.key);
    this.#current = initial.newest;
    this.#secrets = secrets;
    this.#passphrase = passphrase;
    this.#derive = derive;
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    this.#assertCallable(request, 'example encrypt');
    const { ref, key } = this.#current;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(associatedData(ref));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    // keyRef goes into the envelope and comes back to decrypt: it says which key version to use.
    return {
      ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]),
      keyId: keyIdOf(ref),
      keyRef: ref,
    };
  }

  async decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array> {
    this.#assertCallable(request, 'example decrypt');
    const key = this.#keys.get(input.keyRef);
    if (key === undefined) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        `the ciphertext was made with key ${input.keyRef || '(none)'}, whose passphrase is not in the file`,
      );
    }
    const data = Buffer.from(input.ciphertext);
    if (data.length < NONCE_BYTES + TAG_BYTES + 1) {
      throw new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', 'ciphertext too short');
    }
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
    decipher.setAAD(associatedData(input.keyRef));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch (error) {
      throw new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', 'ciphertext failed authentication', {
        cause: error,
      });
    }
  }

  /**
   * The example's backend is its passphrase file: status reads it, derives the keys of new lines (once),
   * and answers unhealthy, still with the current key id, when the file cannot be read or would take a
   * key away. The read may hang (a stuck network file system): the check stops waiting at its deadline.
   */
  async status(request: RequestContext): Promise<ProviderStatus> {
    this.#assertCallable(request, 'example status');
    const keyId = keyIdOf(this.#current.ref);
    let file: FileKeys;
    try {
      this.#reading ??= readFileKeys(this.#secrets, this.#passphrase, this.#derive).finally(() => {
        this.#reading = undefined;
      });
      file = await raceAbort(this.#reading, request.signal, 'example status');
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { healthy: false, reason: `passphrase file unavailable: ${reason}`, keyId };
    }
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'example provider is closed');
    const known = new Set(this.#keys.keys());
    for (const key of file.keys) this.#keys.set(key.ref, key.key);
    if (file.newest.ref !== this.#current.ref) {
      if (known.has(file.newest.ref)) {
        // Going back to an older key would hand kube-apiserver a key id it has seen (A -> B -> A).
        return {
          healthy: false,
          reason: `the last passphrase of the file is an older one than key ${this.#current.ref}: append a new passphrase instead`,
          keyId,
        };
      }
      this.#current = file.newest;
    }
    const inFile = new Set(file.keys.map((key) => key.ref));
    const removed = [...this.#keys.keys()].filter((ref) => !inFile.has(ref));
    if (removed.length > 0) {
      // Still served from memory, but lost at the next restart: say so while it can be undone.
      return {
        healthy: false,
        reason: `passphrases of keys ${removed.join(', ')} were removed from the file: data made with them becomes unreadable at the next restart; put them back`,
        keyId: keyIdOf(this.#current.ref),
      };
    }
    return { healthy: true, keyId: keyIdOf(this.#current.ref) };
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Refuses a call after close, and one whose caller has already gone or run out of time. */
  #assertCallable(request: RequestContext, what: string): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'example provider is closed');
    if (request.signal.aborted) throw abortError(request.signal, what);
  }
}
