import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  Broker,
  createRequestScope,
  decodeEnvelope,
  guardMetrics,
  isTrousseauError,
  noopMetrics,
  silentLogger,
  systemClock,
  TrousseauError,
  type DecryptInput,
  type EncryptResult,
  type KeyProvider,
  type Metrics,
  type ProviderStatus,
} from '../src/index.js';

/** A provider whose key can be switched, and whose encrypt can be held after it has read the key. */
class SwitchableProvider implements KeyProvider {
  keyId = 'key-A';
  statusKeyId: string | undefined;
  hold: Promise<void> | undefined;
  /** Settles once an encrypt has read the key and waits at `hold`. */
  readonly atHold: Promise<void>;
  #reachedHold: () => void = () => undefined;
  /** When set, status waits for it, then answers unhealthy with the key id it read when it began. */
  failingStatusHold: Promise<void> | undefined;
  statusThrows = false;
  closed = false;

  constructor() {
    this.atHold = new Promise((resolve) => (this.#reachedHold = resolve));
  }

  async encrypt(plaintext: Uint8Array): Promise<EncryptResult> {
    const keyId = this.keyId; // the key is read when the call begins ...
    this.#reachedHold();
    await this.hold; // ... and the answer may come back much later
    return { ciphertext: Buffer.from(plaintext), keyId };
  }

  async decrypt(input: { ciphertext: Uint8Array }): Promise<Uint8Array> {
    return input.ciphertext;
  }

  async status(): Promise<ProviderStatus> {
    if (this.statusThrows) throw new Error('backend unreachable');
    const keyId = this.statusKeyId ?? this.keyId;
    if (this.failingStatusHold !== undefined) {
      await this.failingStatusHold;
      return { healthy: false, reason: 'probe failed', keyId };
    }
    return { healthy: true, keyId };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function brokerOver(providers: Map<string, KeyProvider>, metrics: Metrics = noopMetrics): Broker {
  return new Broker({
    providers,
    encryptWith: [...providers.keys()][0] ?? '',
    maxPlaintextBytes: 512,
    healthCheckIntervalMs: 60_000,
    logger: silentLogger,
    metrics,
    clock: systemClock,
  });
}

const request = () => createRequestScope({ deadline: Date.now() + 5_000, logger: silentLogger }).context;

describe('broker key id tracking', () => {
  it('never brings an old key id back when a slow encrypt that read it returns after a rotation', async () => {
    const provider = new SwitchableProvider();
    const broker = brokerOver(new Map([['p', provider]]));
    await broker.start();
    assert.equal(broker.status().keyId, 'key-A');

    let release: () => void = () => undefined;
    provider.hold = new Promise((resolve) => (release = resolve));
    const slow = broker.encrypt(randomBytes(32), request()); // reads key-A, then waits
    await provider.atHold;
    provider.keyId = 'key-B'; // the key rotates meanwhile, and a health check sees it
    await broker.refreshHealth();
    assert.equal(broker.status().keyId, 'key-B');
    release();
    const result = await slow;
    assert.equal(result.keyId, 'key-A', 'the slow call really did encrypt under the old key');
    assert.equal(broker.status().keyId, 'key-B', 'Status must not flip back to key-A');
    await broker.close();
  });

  it('takes a key id from an encrypt that began after the last health check', async () => {
    const provider = new SwitchableProvider();
    const broker = brokerOver(new Map([['p', provider]]));
    await broker.start();
    provider.keyId = 'key-B'; // rotated; the next health check has not run yet
    provider.statusKeyId = 'key-A';
    const result = await broker.encrypt(randomBytes(32), request());
    assert.equal(result.keyId, 'key-B');
    assert.equal(broker.status().keyId, 'key-B', 'Status agrees with what Encrypt returned');
    await broker.close();
  });

  it('keeps a newer key id from an encrypt when a check that began later fails with the old one', async () => {
    const provider = new SwitchableProvider();
    const broker = brokerOver(new Map([['p', provider]]));
    await broker.start();
    let releaseEncrypt: () => void = () => undefined;
    let releaseStatus: () => void = () => undefined;
    provider.keyId = 'key-B'; // rotated: the encrypt below reads key-B ...
    provider.statusKeyId = 'key-A'; // ... while the check still reads key-A
    provider.hold = new Promise((resolve) => (releaseEncrypt = resolve));
    const encrypt = broker.encrypt(randomBytes(32), request());
    provider.failingStatusHold = new Promise((resolve) => (releaseStatus = resolve));
    const check = broker.refreshHealth(); // begins after the encrypt
    releaseEncrypt();
    assert.equal((await encrypt).keyId, 'key-B');
    assert.equal(broker.status().keyId, 'key-B');
    releaseStatus();
    await check; // fails, offering key-A
    assert.equal(broker.status().healthy, false);
    assert.equal(broker.status().keyId, 'key-B', 'an unhealthy answer must not bring key-A back');
    await broker.close();
  });

  it('takes a newer key id from an encrypt even after a later check failed outright', async () => {
    const provider = new SwitchableProvider();
    const broker = brokerOver(new Map([['p', provider]]));
    await broker.start();
    let release: () => void = () => undefined;
    provider.keyId = 'key-B';
    provider.hold = new Promise((resolve) => (release = resolve));
    const encrypt = broker.encrypt(randomBytes(32), request()); // reads key-B, then waits
    provider.statusThrows = true;
    await broker.refreshHealth(); // begins later, learns nothing
    release();
    assert.equal((await encrypt).keyId, 'key-B');
    assert.equal(broker.status().keyId, 'key-B', 'Status agrees with what Encrypt returned');
    await broker.close();
  });

  it('treats an empty or oversized key id from status as unhealthy, keeping the last good one', async () => {
    const provider = new SwitchableProvider();
    const broker = brokerOver(new Map([['p', provider]]));
    await broker.start();
    for (const bad of ['', 'x'.repeat(1025)]) {
      provider.statusKeyId = bad;
      await broker.refreshHealth();
      const status = broker.status();
      assert.equal(status.healthy, false);
      assert.match(status.reason ?? '', /key id that is empty or over 1024 bytes/);
      assert.equal(status.keyId, 'key-A');
    }
    await broker.close();
  });

  it('closes every provider even when one throws from close()', async () => {
    const good = new SwitchableProvider();
    const bad: KeyProvider = {
      encrypt: () => Promise.reject(new Error('unused')),
      decrypt: () => Promise.reject(new Error('unused')),
      status: async () => ({ healthy: true, keyId: 'bad' }),
      close: () => {
        throw new Error('close exploded');
      },
    };
    const broker = brokerOver(
      new Map<string, KeyProvider>([
        ['bad', bad],
        ['good', good],
      ]),
    );
    await broker.close();
    assert.equal(good.closed, true);
  });
});

describe('broker envelope versions', () => {
  /** A provider whose "ciphertext" is the plaintext it was given: what the broker asked it to encrypt. */
  const transparent = (): SwitchableProvider => new SwitchableProvider();

  it('writes version 2 by default: the provider encrypts a 32-byte binding key before the plaintext', async () => {
    const broker = brokerOver(new Map([['p', transparent()]]));
    await broker.start();
    const seed = randomBytes(32);
    const { ciphertext } = await broker.encrypt(seed, request());
    assert.equal(ciphertext[3], 2);
    const payload = decodeEnvelope(ciphertext).payload;
    assert.equal(payload.length, 64);
    assert.deepEqual(Buffer.from(payload.subarray(32)), seed);
    assert.deepEqual(Buffer.from(await broker.decrypt(ciphertext, request())), seed);
    assert.equal(broker.maxPlaintextBytes, 512, 'a provider without a limit: only the configured one');
    await broker.close();
  });

  it('writes version 1 when configured (a rolling upgrade), and reads both', async () => {
    const provider = transparent();
    const v1 = new Broker({
      providers: new Map([['p', provider]]),
      encryptWith: 'p',
      maxPlaintextBytes: 512,
      envelopeVersion: 1,
      healthCheckIntervalMs: 60_000,
      logger: silentLogger,
      metrics: noopMetrics,
      clock: systemClock,
    });
    await v1.start();
    const seed = randomBytes(32);
    const written = await v1.encrypt(seed, request());
    assert.equal(written.ciphertext[3], 1);
    assert.deepEqual(Buffer.from(decodeEnvelope(written.ciphertext).payload), seed);
    const v2 = brokerOver(new Map([['p', provider]]));
    await v2.start();
    assert.deepEqual(Buffer.from(await v2.decrypt(written.ciphertext, request(), written.keyId)), seed);
    const newer = await v2.encrypt(seed, request());
    assert.deepEqual(Buffer.from(await v1.decrypt(newer.ciphertext, request(), newer.keyId)), seed);
    await v1.close();
    await v2.close();
  });

  it("leaves room for the binding key within the provider's own plaintext limit", async () => {
    const limited: KeyProvider = Object.assign(transparent(), { capabilities: { maxPlaintextBytes: 190 } });
    const broker = brokerOver(new Map([['p', limited]]));
    assert.equal(broker.maxPlaintextBytes, 190 - 32);
    await broker.close();
  });

  it('refuses a key id longer than any Encrypt returns before hashing it', async () => {
    const broker = brokerOver(new Map([['p', transparent()]]));
    await broker.start();
    const { ciphertext } = await broker.encrypt(randomBytes(32), request());
    await assert.rejects(
      broker.decrypt(ciphertext, request(), 'k'.repeat(1025)),
      (error: { code?: string }) => error.code === 'TROUSSEAU_ERR_CIPHERTEXT_KEY_ID_MISMATCH',
    );
    await broker.close();
  });
});

describe('broker calls to a provider', () => {
  /** A provider whose decrypt does what the test says: answer, throw at once, reject, or never settle. */
  class ScriptedProvider extends SwitchableProvider {
    decryptAs: (input: DecryptInput) => Uint8Array | Promise<Uint8Array> = (input) => input.ciphertext;

    override decrypt(input: DecryptInput): Promise<Uint8Array> {
      // Not async on purpose: a provider may answer with a plain value or throw before it makes a promise.
      return this.decryptAs(input) as Promise<Uint8Array>;
    }
  }

  /** The broker over one scripted provider "p", and the provider-call observations it records. */
  async function scripted(): Promise<{
    broker: Broker;
    provider: ScriptedProvider;
    ciphertext: Uint8Array;
    outcomes: () => string[];
  }> {
    const observed: Record<string, string>[] = [];
    const metrics = guardMetrics(
      {
        counter: () => ({ add: () => undefined }),
        gauge: () => ({ set: () => undefined, remove: () => undefined }),
        histogram: (options) => ({
          observe: (labels) => {
            if (options.name === 'provider_request_duration_seconds') observed.push({ ...labels });
          },
        }),
      },
      silentLogger,
    );
    const provider = new ScriptedProvider();
    const broker = brokerOver(new Map([['p', provider]]), metrics);
    await broker.start();
    const { ciphertext } = await broker.encrypt(Buffer.from('a data key'), request());
    observed.length = 0;
    const outcomes = (): string[] =>
      observed.map((labels) => `${labels.provider} ${labels.operation} ${labels.outcome}`);
    return { broker, provider, ciphertext, outcomes };
  }

  it('takes an answer given as a plain value, and records the call as OK', async () => {
    const { broker, provider, ciphertext, outcomes } = await scripted();
    provider.decryptAs = (input) => input.ciphertext;
    assert.equal(Buffer.from(await broker.decrypt(ciphertext, request())).toString(), 'a data key');
    assert.deepEqual(outcomes(), ['p decrypt OK']);
    await broker.close();
  });

  it('turns a plain error, thrown at once or rejected, into PROVIDER_INTERNAL naming the provider', async () => {
    const { broker, provider, ciphertext, outcomes } = await scripted();
    const boom = new Error('boom');
    for (const decryptAs of [
      (): never => {
        throw boom;
      },
      (): Promise<never> => Promise.reject(boom),
    ]) {
      provider.decryptAs = decryptAs;
      await assert.rejects(broker.decrypt(ciphertext, request()), (error: unknown) => {
        assert.ok(isTrousseauError(error));
        assert.equal(error.code, 'TROUSSEAU_ERR_PROVIDER_INTERNAL');
        assert.equal(error.message, 'provider "p" failed: boom');
        assert.equal(error.cause, boom);
        return true;
      });
    }
    assert.deepEqual(outcomes(), ['p decrypt INTERNAL', 'p decrypt INTERNAL']);
    await broker.close();
  });

  it("passes a provider's own TrousseauError through unchanged, recorded with its outcome", async () => {
    const { broker, provider, ciphertext, outcomes } = await scripted();
    const down = new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'the KMS is down');
    provider.decryptAs = () => Promise.reject(down);
    await assert.rejects(broker.decrypt(ciphertext, request()), (error: unknown) => error === down);
    assert.deepEqual(outcomes(), ['p decrypt UNAVAILABLE']);
    await broker.close();
  });

  it('answers a call the caller cancels at once, though the provider never does', async () => {
    const { broker, provider, ciphertext, outcomes } = await scripted();
    provider.decryptAs = () => new Promise<never>(() => undefined);
    const scope = createRequestScope({ deadline: Infinity, logger: silentLogger });
    const answer = broker.decrypt(ciphertext, scope.context);
    scope.cancel('the client went away');
    await assert.rejects(answer, (error: unknown) => {
      assert.ok(isTrousseauError(error));
      assert.equal(error.code, 'TROUSSEAU_ERR_CANCELLED');
      assert.equal(error.message, 'decrypt with provider "p" cancelled: the client went away');
      return true;
    });
    assert.deepEqual(outcomes(), ['p decrypt CANCELLED']);
    scope.dispose();
    await broker.close();
  });
});
