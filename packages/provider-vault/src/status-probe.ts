import {
  isTrousseauError,
  raceAbort,
  TrousseauError,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { ciphertextVersion } from './key-state.js';
import type { KeyWatch } from './key-watch.js';
import { asRecord } from './record.js';
import type { TransitClient } from './transit-client.js';
import { encryptItemError, isSealed } from './vault-errors.js';
import { toVaultRequestError } from './vault-http.js';
import type { VaultSession } from './vault-session.js';

/** What the status check encrypts and decrypts to prove the key works; not a secret. */
const PROBE_PLAINTEXT = Buffer.from('trousseau status probe').toString('base64');

interface StatusProbeOptions {
  readonly session: VaultSession;
  readonly key: KeyWatch;
  readonly transit: TransitClient;
  /** `<mount>/keys/<name>`, for messages. */
  readonly keyPath: string;
}

/**
 * The provider's health, checked for real: Vault's health, the token, a read of the key (which also
 * refreshes the key id) and an encrypt+decrypt round trip of a probe through the transit paths the
 * apiserver's calls use. A failure names its reason and says whether the key is gone by its code.
 */
export class StatusProbe {
  readonly #session: VaultSession;
  readonly #key: KeyWatch;
  readonly #transit: TransitClient;
  readonly #keyPath: string;

  constructor(options: StatusProbeOptions) {
    this.#session = options.session;
    this.#key = options.key;
    this.#transit = options.transit;
    this.#keyPath = options.keyPath;
  }

  /** Checks within `deadline` (epoch ms on the provider's clock) and the request's signal. */
  async check(request: RequestContext, deadline: number): Promise<ProviderStatus> {
    const lastGood = this.#key.current?.keyId;
    const health = this.#health(deadline, request.signal);
    try {
      await raceAbort(this.#session.maintain(), request.signal, 'vault status');
      const key = await raceAbort(
        this.#key.refresh(deadline, request.signal),
        request.signal,
        'vault status',
      );
      if (!key.supportsEncryption || !key.supportsDecryption) {
        return {
          healthy: false,
          reason: `key ${this.#keyPath} (type ${key.type}) does not support encryption and decryption`,
          keyId: key.keyId,
          code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
        };
      }
      const [encrypted] = await raceAbort(
        this.#transit.request('encrypt', [PROBE_PLAINTEXT], deadline, request.signal),
        request.signal,
        'vault status',
      );
      if (encrypted === undefined || !('value' in encrypted)) {
        throw encryptItemError(encrypted?.error ?? 'no answer', this.#keyPath);
      }
      const [decrypted] = await raceAbort(
        this.#transit.request('decrypt', [encrypted.value], deadline, request.signal),
        request.signal,
        'vault status',
      );
      if (decrypted === undefined || !('value' in decrypted) || decrypted.value !== PROBE_PLAINTEXT) {
        throw new TrousseauError(
          'TROUSSEAU_ERR_PROVIDER_INTERNAL',
          'vault probe round trip did not give the probe back',
        );
      }
      const version = ciphertextVersion(encrypted.value);
      const current =
        version !== undefined && version > key.latestVersion
          ? await this.#key.refresh(deadline, request.signal)
          : key;
      return { healthy: true, keyId: current.keyId };
    } catch (error) {
      const failure = isTrousseauError(error)
        ? error
        : new TrousseauError('TROUSSEAU_ERR_INTERNAL', 'vault status check failed');
      // Vault's own trouble (sealed, unreachable) explains the failure better than the call that met it,
      // and is never the key gone.
      const healthReason = await health;
      return {
        healthy: false,
        reason: healthReason ?? failure.message,
        code: healthReason === undefined ? failure.code : 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        ...(lastGood === undefined ? {} : { keyId: lastGood }),
      };
    } finally {
      health.catch(() => undefined);
    }
  }

  /** Vault's own view (`sys/health`, unauthenticated): a reason when it is sealed or not initialised. */
  async #health(deadline: number, signal: AbortSignal): Promise<string | undefined> {
    try {
      const body = asRecord(
        await this.#session.http.read('sys/health', {
          timeoutMs: Math.max(1, Math.min(deadline - this.#session.now(), this.#session.requestTimeoutMs)),
          signal,
        }),
      );
      if (body?.initialized === false) return 'vault not initialised';
      if (body?.sealed === true) return 'vault sealed';
      return undefined;
    } catch (error) {
      const failure = toVaultRequestError(error);
      if (isSealed(failure)) return 'vault sealed';
      if (failure.kind === 'network' || failure.kind === 'timeout' || failure.kind === 'tls') {
        return this.#session.mapError(failure, 'key read', 'sys/health').message;
      }
      return undefined;
    }
  }
}
