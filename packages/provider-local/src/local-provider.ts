import { createCipheriv, createDecipheriv } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import {
  keyIdDigest,
  raceAbort,
  throwIfAborted,
  TrousseauError,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderCapabilities,
  type ProviderContext,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import * as z from 'zod';
import { createKeyRingFile, keyRingPermissionProblem, readKeyRing, type KeyRing } from './key-ring.js';
import { NoncePool } from './nonce-pool.js';

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

/** What a key of the ring gives every call: worked out once per key and ring, not per call. */
interface KeyUse {
  readonly material: Buffer;
  readonly keyId: string;
  readonly associatedData: Buffer;
}

/**
 * AES-256-GCM with keys from a key-ring file. The payload is nonce (12) | ciphertext | tag (16); the key
 * name travels in the envelope's key reference. The file is re-read when it changes (checked at every
 * health check), so a rotation in the file reaches the apiserver as a new key id. Encrypt and decrypt use
 * the ring in memory: they keep working while the file is unreadable.
 */
export class LocalKeyProvider implements KeyProvider {
  get capabilities(): ProviderCapabilities {
    return {
      batching: false,
      maxCiphertextBytes: (plaintextBytes) => NONCE_BYTES + plaintextBytes + TAG_BYTES,
      // The key reference is the current key's name.
      maxKeyRefBytes: Buffer.byteLength(this.#ring.current),
    };
  }
  readonly #file: string;
  readonly #context: ProviderContext;
  #ring: KeyRing;
  /** Per key name of `#ring`, filled as keys are used; replaced with the ring. */
  #keyUses = new Map<string, KeyUse>();
  readonly #nonces = new NoncePool();
  #fileVersion: string;
  /** The re-read of the file in progress, shared by concurrent status checks. */
  #reload: Promise<void> | undefined;
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
      await checkPermissions(file, context);
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

  /** The key named `keyRef` in the ring in use, or undefined when the ring has no such key. */
  #keyUse(keyRef: string): KeyUse | undefined {
    let use = this.#keyUses.get(keyRef);
    if (use === undefined) {
      const material = this.#ring.keys.get(keyRef);
      if (material === undefined) return undefined;
      use = { material, keyId: this.#keyId(keyRef, material), associatedData: associatedData(keyRef) };
      this.#keyUses.set(keyRef, use);
    }
    return use;
  }

  /** Refuses a call after close, and one whose caller has already gone or run out of time. */
  #assertCallable(request: RequestContext, what: string): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'local provider is closed');
    throwIfAborted(request, what);
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    this.#assertCallable(request, 'local encrypt');
    const keyRef = this.#ring.current;
    const key = this.#keyUse(keyRef);
    if (key === undefined)
      throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_KEY_GONE', `current key "${keyRef}" is missing`);
    // nonce | ciphertext | tag, written into one buffer (GCM's final() adds no bytes).
    const out = Buffer.allocUnsafe(NONCE_BYTES + plaintext.length + TAG_BYTES);
    this.#nonces.fill(out, 0, NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.material, out.subarray(0, NONCE_BYTES));
    cipher.setAAD(key.associatedData);
    let at = NONCE_BYTES + cipher.update(plaintext).copy(out, NONCE_BYTES);
    at += cipher.final().copy(out, at);
    at += cipher.getAuthTag().copy(out, at);
    return { ciphertext: out.subarray(0, at), keyId: key.keyId, keyRef };
  }

  async decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array> {
    this.#assertCallable(request, 'local decrypt');
    const key = this.#keyUse(input.keyRef);
    if (key === undefined) {
      // The key was removed from the ring (or never in it): what it encrypted cannot be read until the
      // ring holds it again.
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
        `ciphertext names key "${input.keyRef}", which is not in the key ring ${this.#file}; restore it from a backup of the ring`,
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
    const decipher = createDecipheriv('aes-256-gcm', key.material, data.subarray(0, NONCE_BYTES));
    decipher.setAAD(key.associatedData);
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plaintext: Buffer | undefined;
    try {
      plaintext = decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES));
      // GCM's final() adds no bytes; it checks the tag. Nothing is returned before it has.
      decipher.final();
    } catch (error) {
      plaintext?.fill(0);
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        'ciphertext failed authentication (tampered, or not made with this key)',
        {
          cause: error,
        },
      );
    }
    return plaintext;
  }

  /**
   * Re-reads the key ring when the file changed. A read that hangs (a stuck network file system) cannot be
   * cancelled, so the call stops waiting for it at its deadline; later checks share the read in progress
   * rather than starting more.
   */
  async status(request: RequestContext): Promise<ProviderStatus> {
    this.#assertCallable(request, 'local status');
    const current = this.#currentKeyId();
    try {
      this.#reload ??= this.#reloadIfChanged().finally(() => {
        this.#reload = undefined;
      });
      await raceAbort(this.#reload, request.signal, 'local status');
    } catch (error) {
      return {
        healthy: false,
        reason: `key ring not re-read, serving the last good one: ${messageOf(error)}`,
        keyId: current,
      };
    }
    return { healthy: true, keyId: this.#currentKeyId() };
  }

  async #reloadIfChanged(): Promise<void> {
    const version = await fileVersion(this.#file);
    if (version === this.#fileVersion) return;
    await checkPermissions(this.#file, this.#context);
    const ring = await readKeyRing(this.#file);
    if (this.#closed) return;
    this.#ring = ring;
    this.#keyUses = new Map();
    this.#fileVersion = version;
    this.#context.logger.info({ keyFile: this.#file, current: ring.current }, 'reloaded local key ring');
  }

  #currentKeyId(): string {
    const key = this.#keyUse(this.#ring.current);
    if (key === undefined)
      throw new TrousseauError('TROUSSEAU_ERR_INTERNAL', 'key ring without its current key');
    return key.keyId;
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

/**
 * Refuses a key ring that others may read or write, and warns about one its group may: checked at start
 * and whenever the file is read again (a refused re-read keeps the ring in memory and reports unhealthy).
 */
async function checkPermissions(file: string, context: ProviderContext): Promise<void> {
  const problem = keyRingPermissionProblem(file, await stat(file));
  if (problem?.severity === 'refuse') throw new Error(problem.reason);
  if (problem !== undefined) context.logger.warn({ keyFile: file }, problem.reason);
}

async function fileVersion(file: string): Promise<string> {
  const info = await stat(file);
  // ctime too: a chmod changes no content but must be checked again.
  return `${info.mtimeMs}:${info.ctimeMs}:${info.size}:${info.ino}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
