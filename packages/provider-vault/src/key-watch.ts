import { isTrousseauError, type ProviderContext } from '@trousseau/core';
import { isRecreated, parseKeyRead, type KeyIdentity, type KeyState } from './key-state.js';
import { SharedFlight } from './shared-flight.js';
import type { VaultSession } from './vault-session.js';

interface KeyWatchOptions {
  readonly session: VaultSession;
  readonly context: ProviderContext;
  readonly identity: KeyIdentity;
  /** How often the key is read in the background (token maintenance runs first). */
  readonly intervalMs: number;
}

/**
 * What the provider knows of its transit key, and keeping it current: `GET <mount>/keys/<name>` on an
 * interval in the background and on demand (a status check, an encrypt under a version newer than the
 * one known), so a rotation in Vault changes the key id.
 */
export class KeyWatch {
  readonly #session: VaultSession;
  readonly #context: ProviderContext;
  readonly #identity: KeyIdentity;
  readonly #keyPath: string;
  readonly #intervalMs: number;
  readonly #reads = new SharedFlight<KeyState>('vault key read');
  #key: KeyState | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: KeyWatchOptions) {
    this.#session = options.session;
    this.#context = options.context;
    this.#identity = options.identity;
    this.#keyPath = `${options.identity.mount}/keys/${options.identity.keyName}`;
    this.#intervalMs = options.intervalMs;
  }

  /** The latest key state read, if any. */
  get current(): KeyState | undefined {
    return this.#key;
  }

  /**
   * Reads the key's metadata (single flight) and updates the key id. A read showing an older version of
   * the same key (a performance standby behind the active node) is ignored: going back would hand the
   * apiserver a key id it saw before (A -> B -> A), which the KMS contract forbids. A re-created key may
   * legitimately come back with a lower version; its versions' creation times tell it apart. The read is
   * shared by the callers that need it at once and abandoned (no retry) once all of them have gone; one
   * without a signal (start-up, the background refresh) keeps it going.
   */
  refresh(deadline: number, signal?: AbortSignal): Promise<KeyState> {
    return this.#reads.run(signal, async (shared) => {
      const body = await this.#session.request(
        'key read',
        this.#keyPath,
        deadline,
        (token, timeoutMs) => this.#session.http.read(this.#keyPath, { token, timeoutMs, signal: shared }),
        () => shared.aborted,
      );
      const key = parseKeyRead(body, this.#identity);
      const previous = this.#key;
      if (
        previous !== undefined &&
        key.latestVersion < previous.latestVersion &&
        !isRecreated(previous, key)
      ) {
        this.#context.logger.warn(
          {
            provider: this.#context.instanceName,
            key: this.#keyPath,
            version: key.latestVersion,
            knownVersion: previous.latestVersion,
            keyId: previous.keyId,
          },
          'vault answered an older state of the key (a standby that has not caught up?); keeping the newer key id',
        );
        return previous;
      }
      if (previous?.keyId !== key.keyId) {
        this.#context.logger.info(
          {
            provider: this.#context.instanceName,
            key: this.#keyPath,
            version: key.latestVersion,
            keyId: key.keyId,
            previousKeyId: previous?.keyId,
          },
          previous === undefined ? 'vault key found' : 'vault key changed (rotated or re-created)',
        );
      }
      this.#key = key;
      return key;
    });
  }

  /** Starts the background refresh: session upkeep (token, client certificate), then a key read. */
  start(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.#session
        .maintain()
        .then(() => this.refresh(this.#session.now() + this.#session.requestTimeoutMs))
        .catch((error: unknown) => {
          this.#context.logger.debug(
            {
              provider: this.#context.instanceName,
              reason: isTrousseauError(error) ? error.message : 'unknown',
            },
            'vault key refresh failed',
          );
        })
        .finally(() => this.start());
    }, this.#intervalMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}
