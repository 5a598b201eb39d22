import { setTimeout as sleep } from 'node:timers/promises';
import {
  defineProvider,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type ProviderDefinition,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';

/** What a test can make a {@link FaultyProvider} do. Changes apply to the next call. */
export interface ProviderFaults {
  /** Delay before each encrypt/decrypt answers (honours the request signal). */
  delayMs: number;
  /**
   * Encrypt/decrypt wait for it to settle before going on (the request signal cuts the wait short): a
   * test holds calls inside the provider for as long as it needs, with no timing involved.
   */
  hold: Promise<void> | undefined;
  /** Thrown by encrypt/decrypt instead of calling the wrapped provider. */
  callError: Error | undefined;
  /** Answered by status instead of asking the wrapped provider. */
  status: ProviderStatus | undefined;
  /** Thrown by status. */
  statusError: Error | undefined;
}

/**
 * Wraps a real provider and lets a test inject delays, errors and statuses, to drive the front-end
 * through backend trouble without a backend. Everything not injected reaches the wrapped provider.
 */
export class FaultyProvider implements KeyProvider {
  readonly faults: ProviderFaults = {
    delayMs: 0,
    hold: undefined,
    callError: undefined,
    status: undefined,
    statusError: undefined,
  };
  readonly #inner: KeyProvider;
  /** Calls that reached this provider. */
  calls = 0;
  /** Calls whose injected delay was cut short by the request signal (deadline or cancellation). */
  aborted = 0;

  constructor(inner: KeyProvider) {
    this.#inner = inner;
  }

  get capabilities(): KeyProvider['capabilities'] {
    return this.#inner.capabilities;
  }

  async #before(request: RequestContext): Promise<void> {
    this.calls += 1;
    const { delayMs, hold } = this.faults;
    try {
      if (delayMs > 0) await sleep(delayMs, undefined, { signal: request.signal });
      if (hold !== undefined) await settledOrAborted(hold, request.signal);
    } catch (error) {
      this.aborted += 1;
      throw error;
    }
    if (this.faults.callError !== undefined) throw this.faults.callError;
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    await this.#before(request);
    return this.#inner.encrypt(plaintext, request);
  }

  async decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array> {
    await this.#before(request);
    return this.#inner.decrypt(input, request);
  }

  async status(request: RequestContext): Promise<ProviderStatus> {
    if (this.faults.statusError !== undefined) throw this.faults.statusError;
    return this.faults.status ?? this.#inner.status(request);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)));

/** Resolves when `hold` does; rejects with the signal's reason if the signal aborts first. */
function settledOrAborted(hold: Promise<void>, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(asError(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    hold.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(asError(error));
      },
    );
  });
}

/**
 * A provider definition whose instances are FaultyProviders around what `wrapped` creates; the
 * instances are collected in `instances` (by config name) for the test to steer.
 */
export function faultyProviderDefinition(wrapped: ProviderDefinition): {
  definition: ProviderDefinition;
  instances: Map<string, FaultyProvider>;
} {
  const instances = new Map<string, FaultyProvider>();
  const definition = defineProvider<unknown>({
    name: `faulty-${wrapped.name}`,
    coreRange: wrapped.coreRange,
    configSchema: wrapped.configSchema,
    create: async (options, context) => {
      const provider = new FaultyProvider(await wrapped.create(options, context));
      instances.set(context.instanceName, provider);
      return provider;
    },
  });
  return { definition, instances };
}
