import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import {
  keyIdDigest,
  TrousseauError,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderContext,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { z } from 'zod';
import { createKeyRingFile, readKeyRing, type KeyRing } from './key-ring.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export const localOptionsSchema = z.strictObject({
  /** Path of the key-ring file (JSON), relative to the config file's directory. */
  keyFile: z.string().min(1),
  /** Create the file with one fresh key when it does not exist (the embedded development default). */
  createIfMissing: z.boolean().default(false),
});

export type LocalOptions = z.infer<typeof localOptionsSchema>;

/** The associated data binds each ciphertext to the key name it claims. */
function associatedData(keyRef: string): Buffer {
  return Buffer.from(`trousseau-local/v1/${keyRef}`, 'utf8');
}

/**
 * AES-256-GCM with keys from a key-ring file. The payload is nonce (12) | ciphertext | tag (16); the key
 * name travels in the envelope's key reference. The file is re-read when it changes (checked at every
 * health check), so a rotation in the file reaches the apiserver as a new key id.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly capabilities = { batching: false } as const;
  readonly #file: string;
  readonly #context: ProviderContext;
  #ring: KeyRing;
  #fileVersion: string;
  #closed = false;

  private constructor(file: string, ring: KeyRing, fileVersion: string, context: ProviderContext) {
    this.#file = file;
    this.#ring = ring;
    this.#fileVersion = fileVersion;
    this.#context = context;
  }

  static async open(options: LocalOptions, context: ProviderContext): Promise<LocalKeyProvider> {
    const file = isAbsolute(options.keyFile) ? options.keyFile : resolve(context.configDir, options.keyFile);
    if (options.createIfMissing && !(await exists(file))) {
      const id = await createKeyRingFile(file);
      context.logger.warn({ keyFile: file, key: id }, 'created a new local key ring');
    }
    let ring: KeyRing;
    try {
      ring = await readKeyRing(file);
    } catch (error) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID',
        `local provider: ${messageOf(error)}`,
        { cause: error },
      );
    }
    return new LocalKeyProvider(file, ring, await fileVersion(file), context);
  }

  #keyId(keyRef: string, material: Buffer): string {
    return `local:${keyRef}:${keyIdDigest([keyRef, material.toString('base64')])}`;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'local provider is closed');
  }

  async encrypt(plaintext: Uint8Array, _request: RequestContext): Promise<EncryptResult> {
    this.#assertOpen();
    const keyRef = this.#ring.current;
    const key = this.#ring.keys.get(keyRef);
    if (key === undefined)
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE',
        `current key "${keyRef}" is missing`,
      );
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(associatedData(keyRef));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]),
      keyId: this.#keyId(keyRef, key),
      keyRef,
    };
  }

  async decrypt(input: DecryptInput, _request: RequestContext): Promise<Uint8Array> {
    this.#assertOpen();
    const key = this.#ring.keys.get(input.keyRef);
    if (key === undefined) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        `ciphertext names key "${input.keyRef}", which is not in the key ring ${this.#file}`,
      );
    }
    if (input.ciphertext.length < NONCE_BYTES + TAG_BYTES + 1) {
      throw new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', 'ciphertext is too short for AES-256-GCM');
    }
    const data = Buffer.from(
      input.ciphertext.buffer,
      input.ciphertext.byteOffset,
      input.ciphertext.byteLength,
    );
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
    decipher.setAAD(associatedData(input.keyRef));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch (error) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        'ciphertext failed authentication (tampered, or not made with this key)',
        {
          cause: error,
        },
      );
    }
  }

  async status(_request: RequestContext): Promise<ProviderStatus> {
    this.#assertOpen();
    const current = this.#currentKeyId();
    try {
      const version = await fileVersion(this.#file);
      if (version !== this.#fileVersion) {
        this.#ring = await readKeyRing(this.#file);
        this.#fileVersion = version;
        this.#context.logger.info(
          { keyFile: this.#file, current: this.#ring.current },
          'reloaded local key ring',
        );
      }
    } catch (error) {
      return {
        healthy: false,
        reason: `key ring unreadable, serving the last good one: ${messageOf(error)}`,
        keyId: current,
      };
    }
    return { healthy: true, keyId: this.#currentKeyId() };
  }

  #currentKeyId(): string {
    const key = this.#ring.keys.get(this.#ring.current);
    if (key === undefined)
      throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', 'key ring without its current key');
    return this.#keyId(this.#ring.current, key);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function fileVersion(file: string): Promise<string> {
  const info = await stat(file);
  return `${info.mtimeMs}:${info.size}:${info.ino}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
