import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import {
  createSecretReader,
  isTrousseauError,
  type Clock,
  type ErrorCode,
  type Logger,
  type ProviderContext,
} from '@trousseau/core';
import { RecordingMetrics, testRequestContext } from '@trousseau/testing';
import type { VaultEmulatorOptions } from '@trousseau/testing/vault';
import { vaultOptionsSchema, VaultKeyProvider } from '../src/index.js';
import { providerPolicy, startBackend, uniqueName, type VaultBackend } from './backend.js';

/** A clock the tests move forward; shared by the emulator and the provider so TTLs agree. */
export class TestClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export { RecordingMetrics };

/** The clock each provider a fixture opened was given: request deadlines must be on it. */
const clocks = new WeakMap<VaultKeyProvider, Clock>();

/** A logger that keeps every line as JSON text, to check that no secret is ever logged. */
export class CapturingLogger implements Logger {
  readonly lines: string[];
  readonly #bindings: Record<string, unknown>;
  constructor(lines: string[] = [], bindings: Record<string, unknown> = {}) {
    this.lines = lines;
    this.#bindings = bindings;
  }
  #log(level: string): Logger['info'] {
    return (fields: unknown, message?: string) => {
      this.lines.push(
        JSON.stringify(
          typeof fields === 'string'
            ? { level, ...this.#bindings, msg: fields }
            : { level, ...this.#bindings, ...(fields as object), msg: message },
        ),
      );
    };
  }
  trace = this.#log('trace');
  debug = this.#log('debug');
  info = this.#log('info');
  warn = this.#log('warn');
  error = this.#log('error');
  child(bindings: Record<string, unknown>): Logger {
    return new CapturingLogger(this.lines, { ...this.#bindings, ...bindings });
  }
}

export interface Fixture {
  readonly dir: string;
  readonly keyName: string;
  readonly policy: string;
  readonly metrics: RecordingMetrics;
  readonly logger: CapturingLogger;
  readonly clock: TestClock;
  context(): ProviderContext;
  /** Writes a file in the fixture's directory and returns its name (relative to the config dir). */
  writeFile(name: string, content: string): Promise<string>;
  /** Validates `config` like the registry would and opens the provider. */
  open(config: Record<string, unknown>): Promise<VaultKeyProvider>;
  cleanup(): Promise<void>;
}

/** A key, its least-privilege policy, a temp dir and an instrumented context, on `backend`. */
export async function createFixture(backend: VaultBackend, clock = new TestClock()): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-vault-'));
  const keyName = uniqueName('k8s');
  const policy = uniqueName('kms');
  await backend.createKey(keyName);
  await backend.writePolicy(policy, providerPolicy(backend.transitMount, keyName));
  const metrics = new RecordingMetrics();
  const logger = new CapturingLogger();
  const context = (): ProviderContext => ({
    instanceName: 'vault-test',
    logger,
    metrics,
    clock,
    configDir: dir,
    secrets: createSecretReader(dir, {}),
  });
  return {
    dir,
    keyName,
    policy,
    metrics,
    logger,
    clock,
    context,
    async writeFile(name, content) {
      await writeFile(join(dir, name), content, { mode: 0o600 });
      return name;
    },
    async open(config) {
      const parsed = vaultOptionsSchema.parse({
        address: backend.url,
        transitMount: backend.transitMount,
        keyName,
        ...config,
      });
      const provider = await VaultKeyProvider.open(parsed, context());
      clocks.set(provider, clock);
      return provider;
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A static-token provider config with a fresh token of the fixture's policy written to a file. */
export async function tokenAuth(
  backend: VaultBackend,
  fixture: Fixture,
  options: { ttlSeconds?: number; renewable?: boolean; file?: string } = {},
): Promise<{ auth: Record<string, unknown>; token: string; file: string }> {
  const token = await backend.createToken({
    policies: [fixture.policy],
    ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
    ...(options.renewable === undefined ? {} : { renewable: options.renewable }),
  });
  const file = await fixture.writeFile(options.file ?? 'vault-token', `${token}\n`);
  return { auth: { method: 'token', token: { file } }, token, file };
}

/**
 * Waits until `check` holds, polling every 10 ms, at most `timeoutMs`: a bound for a broken build, sized
 * for a loaded CI machine; a check that holds ends the wait at once.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** What `useVaultBackend` gives a suite; read it inside tests and later hooks (set by its `before`). */
export interface VaultSuite {
  readonly backend: VaultBackend;
  readonly fixture: Fixture;
  /** The fixture's clock; also the emulator's unless `shareClock` is false. */
  readonly clock: TestClock;
}

/**
 * Registers, in the calling `describe`, a `before` that starts a backend and makes a fixture on it, and
 * an `after` that closes the backend, then cleans the fixture up. Hooks the suite registers later run
 * after these (node:test runs hooks in registration order).
 * `emulator` is passed to `startBackend`; with `shareClock` (default) the emulator reads `clock` too, so
 * advancing it moves Vault's token TTLs as well as the provider's; with `shareClock: false` the emulator
 * keeps Date.now.
 */
export function useVaultBackend(
  options: { emulator?: Omit<VaultEmulatorOptions, 'clock'>; shareClock?: boolean } = {},
): VaultSuite {
  const clock = new TestClock();
  let backend: VaultBackend | undefined;
  let fixture: Fixture | undefined;
  before(async () => {
    const emulator = options.emulator ?? {};
    backend = await startBackend(options.shareClock === false ? emulator : { ...emulator, clock });
    fixture = await createFixture(backend, clock);
  });
  after(async () => {
    await backend?.close();
    await fixture?.cleanup();
  });
  const started = <T>(value: T | undefined, name: string): T => {
    if (value === undefined)
      throw new Error(`the suite's ${name} is not started (read it in a test or hook)`);
    return value;
  };
  return {
    get backend() {
      return started(backend, 'backend');
    },
    get fixture() {
      return started(fixture, 'fixture');
    },
    clock,
  };
}

/** Awaits `work` and checks it rejects with a TrousseauError of `code` (and a message matching `message`). */
export async function rejectsWith(work: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(isTrousseauError(error), `expected a TrousseauError, got ${String(error)}`);
    assert.equal(error.code, code, `${error.code}: ${error.message}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

/** Encrypts 32 random bytes and checks they decrypt back, each call with a 3 s deadline on its clock. */
export async function roundTrip(provider: VaultKeyProvider): Promise<void> {
  const ctx = (): ReturnType<typeof testRequestContext> =>
    testRequestContext(3_000, undefined, clocks.get(provider));
  const plaintext = randomBytes(32);
  const sealed = await provider.encrypt(plaintext, ctx());
  assert.deepEqual(
    Buffer.from(await provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, ctx())),
    plaintext,
  );
}
