import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { SecretReader } from './secret-ref.js';

/**
 * The version of the provider contract this build of core implements. A provider declares the range it
 * supports in `coreRange`; the registry refuses a provider whose range does not include this version.
 * Minor versions only add optional members; a major version would change what a provider must do.
 * 1.1 added `ProviderStatus.code`, `TROUSSEAU_ERR_PROVIDER_KEY_GONE` and declared metric instruments
 * (`metrics.counter()`, `histogram()`, `gauge()`). 1.2 added the size capabilities
 * (`maxCiphertextBytes`, `maxKeyRefBytes`) that a replicated `encryptWith` needs. 1.3 added
 * `throwIfAborted(request, what)`, which checks a request without making its signal.
 */
export const CORE_API_VERSION = '1.3.0';

/** What every call into a provider carries. */
export interface RequestContext {
  /** The apiserver's request uid (v2), or a generated one; for log correlation only. */
  readonly uid: string;
  /** Aborts when the caller's deadline passes, the caller cancels, or the server shuts down. */
  readonly signal: AbortSignal;
  /** Epoch milliseconds by which the call must have answered; `Infinity` when the caller set none. */
  readonly deadline: number;
  /** A logger bound to this request (its uid); never log plaintext, keys or tokens. */
  readonly logger: Logger;
}

/** What a provider returns from {@link KeyProvider.encrypt}. */
export interface EncryptResult {
  /** The provider's own ciphertext of the plaintext. Core wraps it in the envelope. */
  readonly ciphertext: Uint8Array;
  /** The key id of the key that produced it: the same value {@link KeyProvider.status} reports now. */
  readonly keyId: string;
  /**
   * What the provider needs at decrypt time to address the key (a key version, a key name), stored in
   * the envelope header. At most 255 UTF-8 bytes. Omit when the ciphertext itself says it (Vault).
   */
  readonly keyRef?: string;
}

/** What core hands to {@link KeyProvider.decrypt}: exactly what encrypt returned. */
export interface DecryptInput {
  readonly ciphertext: Uint8Array;
  /** The `keyRef` encrypt returned, or `''`. */
  readonly keyRef: string;
}

/**
 * A provider's health. `keyId` is the id of the key new encryptions use; keep reporting the last good
 * one while the backend is briefly unreachable. When unhealthy, `code` is the error code of what failed;
 * `TROUSSEAU_ERR_PROVIDER_KEY_GONE` says the key itself is gone (disabled, deleted, permission revoked)
 * rather than the backend being slow or down: the front-end then fails the apiserver's Status call with
 * an error, which is the only signal that stops writes (kubernetes#138950). A `status()` that throws an
 * error with that code counts the same.
 */
export type ProviderStatus =
  | { readonly healthy: true; readonly keyId: string }
  | {
      readonly healthy: false;
      readonly reason: string;
      readonly keyId?: string;
      /** The `TROUSSEAU_ERR_*` code of the failure (core API 1.1). */
      readonly code?: string;
      /** Core API 1.0's way to say the key is gone; same as `code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE'`. */
      readonly keyUnusable?: boolean;
    };

/** Optional features, declared in one place. */
export interface ProviderCapabilities {
  /** The largest plaintext this provider can encrypt (an RSA key wraps less than AES). */
  readonly maxPlaintextBytes?: number;
  /** The provider gathers concurrent calls into batched backend requests. */
  readonly batching?: boolean;
  /**
   * The largest ciphertext `encrypt` returns for a plaintext of `plaintextBytes` bytes (core API 1.2). A
   * provider listed with others in `encryptWith` must declare it: every copy of a data key shares KMS
   * v2's 1024 bytes, and the broker refuses at start a list whose copies cannot fit.
   */
  readonly maxCiphertextBytes?: (plaintextBytes: number) => number;
  /** The longest key reference `encrypt` returns, in UTF-8 bytes (core API 1.2; 255 when not declared). */
  readonly maxKeyRefBytes?: number;
}

/**
 * A key-encryption backend. Core calls it concurrently; every method must honour `request.signal` and
 * `request.deadline`, and fail with a {@link TrousseauError} whose code says what went wrong. A failed
 * call throws: it never returns an empty or partial result.
 */
export interface KeyProvider {
  readonly capabilities?: ProviderCapabilities;
  encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult>;
  decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array>;
  /** A real check of the backend and key. Core calls it in the background and caches the answer. */
  status(request: RequestContext): Promise<ProviderStatus>;
  /** Releases clients, timers and sockets. Idempotent; calls after close fail. */
  close(): Promise<void>;
}

/** What a provider's factory receives besides its own validated options. */
export interface ProviderContext {
  /** The instance's `name` from the config file (several instances of one type may run). */
  readonly instanceName: string;
  readonly logger: Logger;
  /**
   * Declare instruments once (in `create`) and report through their handles, labelled with
   * `provider: instanceName`; reporting never throws.
   */
  readonly metrics: Metrics;
  /** The one clock of the process: compare `request.deadline` and time token lifetimes with it. */
  readonly clock: Clock;
  /** The directory of the config file: resolve relative paths in options against it. */
  readonly configDir: string;
  /** Reads `{file}` / `{env}` secret references. */
  readonly secrets: SecretReader;
}

/** A provider package's entry point: export one as `default` (or as `provider`). */
export interface ProviderDefinition<Options = unknown> {
  /** Marks the export so the registry can tell a definition from anything else. */
  readonly kind: 'trousseau-provider';
  /** The provider's type name, for messages (`vault`, `acme-hsm`). */
  readonly name: string;
  /** The semver range of {@link CORE_API_VERSION} this provider supports, e.g. `^1.0.0`. */
  readonly coreRange: string;
  /** Validates the instance's `config` block. Any Standard Schema library works (zod, valibot, ...). */
  readonly configSchema: StandardSchemaV1<unknown, Options>;
  create(options: Options, context: ProviderContext): KeyProvider | Promise<KeyProvider>;
}

/** Declares a provider; gives type inference for `create`'s options from the schema. */
export function defineProvider<Options>(
  definition: Omit<ProviderDefinition<Options>, 'kind'>,
): ProviderDefinition<Options> {
  return { kind: 'trousseau-provider', ...definition };
}
