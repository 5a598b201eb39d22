import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createRequestScope,
  defineProvider,
  isTrousseauError,
  parseConfig,
  silentLogger,
  type Clock,
  type KeyProvider,
  type ProviderContext,
  type RequestContext,
} from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import {
  providerToken,
  registerValue,
  resolveToken,
  TOKENS,
  type DependencyContainer,
} from '@trousseau/core/wiring';
import localProvider, { createKeyRingFile } from '@trousseau/provider-local';
import { RecordingMetrics } from '@trousseau/testing';
import { BUILTIN_PROVIDERS, createServerContainer, SERVER_TOKENS, TrousseauServer } from '../src/index.js';
import { removeDir, scratchDir } from './helpers.js';

/** A clock an hour ahead of the system's: anything that reads Date.now() instead shows up. */
const aheadClock: Clock = { now: () => Date.now() + 3_600_000 };

/** A provider that keeps data as it is and counts closes. */
class PlainProvider implements KeyProvider {
  closed = 0;
  async encrypt(plaintext: Uint8Array): Promise<{ ciphertext: Uint8Array; keyId: string }> {
    return { ciphertext: Buffer.from(plaintext), keyId: 'plain-1' };
  }
  async decrypt(input: { ciphertext: Uint8Array }): Promise<Uint8Array> {
    return input.ciphertext;
  }
  async status(): Promise<{ healthy: true; keyId: string }> {
    return { healthy: true, keyId: 'plain-1' };
  }
  async close(): Promise<void> {
    this.closed += 1;
  }
}

describe('composition root: the container builds the plugin, and a token replaces a part', () => {
  let dir: string;
  before(async () => {
    dir = await scratchDir('trousseau-wiring-');
    await createKeyRingFile(join(dir, 'keys.json'));
  });
  after(() => removeDir(dir));

  function containerFor(providers: unknown[], encryptWith = 'main'): DependencyContainer {
    const loaded = parseConfig(
      { version: 1, socket: { path: join(dir, 'kms.sock') }, encryptWith, providers },
      join(dir, 'config.yaml'),
      dir,
    );
    return createServerContainer({ loaded, logger: silentLogger });
  }

  const request = (clock: Clock = aheadClock): RequestContext =>
    createRequestScope({
      deadline: clock.now() + 5_000,
      logger: silentLogger,
      now: () => clock.now(),
    }).context;

  it('resolves broker, health monitor, front-end, metrics and each provider instance from their tokens', async () => {
    const contexts: ProviderContext[] = [];
    const recording = defineProvider<unknown>({
      ...localProvider,
      name: 'recording-local',
      create: (options, context) => {
        contexts.push(context);
        return localProvider.create(options as never, context);
      },
    });
    const container = containerFor([
      { name: 'main', type: 'recording-local', config: { keyFile: 'keys.json' } },
    ]);
    const metrics = new RecordingMetrics();
    registerValue(container, TOKENS.builtinProviders, {
      ...BUILTIN_PROVIDERS,
      'recording-local': async () => ({ default: recording }),
    });
    registerValue(container, TOKENS.clock, aheadClock);
    registerValue(container, TOKENS.metricsBackend, metrics);
    const server = await TrousseauServer.fromContainer(container);
    try {
      assert.equal(server.broker, resolveToken(container, TOKENS.broker), 'the broker is the registered one');
      const instance = resolveToken(container, providerToken('main'));
      assert.equal(resolveToken(container, TOKENS.providers).get('main'), instance);
      assert.equal(server.metrics, resolveToken(container, SERVER_TOKENS.prometheus));
      assert.equal(contexts.length, 1);
      const [context] = contexts;
      assert.equal(context?.clock, aheadClock, 'the provider got the one clock');
      assert.equal(context.metrics, resolveToken(container, TOKENS.metrics), 'and the one guarded metrics');
      assert.equal(context.secrets, resolveToken(container, TOKENS.secrets));

      await server.broker.start();
      const [health] = server.broker.health();
      assert.ok(health !== undefined && health.checkedAt >= aheadClock.now() - 60_000, 'health checks on it');
      const sealed = await server.broker.encrypt(randomBytes(32), request());
      assert.equal(sealed.keyId, server.broker.status().keyId);
      assert.equal(
        metrics.observations.filter((entry) => entry.name === 'provider_request_duration_seconds').length,
        1,
        'the broker reports to the overridden backend',
      );
      assert.equal(
        metrics.gauges.get(RecordingMetrics.key('provider_healthy', { provider: 'main' })),
        1,
        'and so does the health monitor it was given',
      );
    } finally {
      await server.close();
    }
  });

  it('uses a provider instance registered under its token instead of creating one', async () => {
    const container = containerFor([{ name: 'main', type: 'no-such-provider-package', config: {} }]);
    const plain = new PlainProvider();
    registerValue(container, providerToken('main'), plain);
    const server = await TrousseauServer.fromContainer(container);
    try {
      const data = randomBytes(32);
      const sealed = await server.broker.encrypt(data, request());
      assert.equal(sealed.keyId, 'plain-1');
      assert.deepEqual(
        Buffer.from(await server.broker.decrypt(sealed.ciphertext, request(), 'plain-1')),
        data,
      );
    } finally {
      await server.close();
    }
    assert.equal(plain.closed, 1, 'the broker owns the instance it was given and closes it');
  });

  it('closes the instances already created when a later one fails to start', async () => {
    const created: KeyProvider[] = [];
    const closed: KeyProvider[] = [];
    const tracked = defineProvider<unknown>({
      ...localProvider,
      name: 'tracked-local',
      create: async (options, context) => {
        const inner = await localProvider.create(options as never, context);
        created.push(inner);
        return {
          encrypt: (plaintext, req) => inner.encrypt(plaintext, req),
          decrypt: (input, req) => inner.decrypt(input, req),
          status: (req) => inner.status(req),
          close: async () => {
            closed.push(inner);
            await inner.close();
          },
        };
      },
    });
    const failing = defineProvider<unknown>({
      ...localProvider,
      name: 'failing',
      create: () => {
        throw new Error('the backend refused our options');
      },
    });
    const container = containerFor([
      { name: 'main', type: 'tracked-local', config: { keyFile: 'keys.json' } },
      { name: 'second', type: 'failing', config: { keyFile: 'keys.json' } },
    ]);
    registerValue(container, TOKENS.builtinProviders, {
      'tracked-local': async () => ({ default: tracked }),
      failing: async () => ({ default: failing }),
    });
    await assert.rejects(TrousseauServer.fromContainer(container), (error: unknown) => {
      assert.ok(isTrousseauError(error));
      assert.equal(error.code, 'TROUSSEAU_ERR_PROVIDER_CONFIG_INVALID');
      assert.match(error.message, /provider "second" \(failing\) failed to start: the backend refused/);
      return true;
    });
    assert.equal(created.length, 1);
    assert.deepEqual(closed, created);
  });

  it('answers v1beta1 Version with the runtime registered under its token', async () => {
    const container = containerFor([{ name: 'main', type: 'local', config: { keyFile: 'keys.json' } }]);
    registerValue(container, TOKENS.runtime, { name: 'trousseau-under-test', version: '9.9.9' });
    const server = await TrousseauServer.fromContainer(container);
    try {
      await server.listen();
      const client = new KmsClient(server.socketPath);
      try {
        const version = await client.v1Version();
        assert.equal(version.runtime_name, 'trousseau-under-test');
        assert.equal(version.runtime_version, '9.9.9');
      } finally {
        client.close();
      }
    } finally {
      await server.close();
    }
  });
});
