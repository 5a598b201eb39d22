import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  defineProvider,
  parseConfig,
  type Counter,
  type Gauge,
  type Histogram,
  type KeyProvider,
  type Logger,
  type MetricsBackend,
  type ProviderDefinition,
} from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import { registerValue, resolveToken, TOKENS, type DependencyContainer } from '@trousseau/core/wiring';
import localProvider, { createKeyRingFile } from '@trousseau/provider-local';
import { startAzureKeyVaultForProvider } from '@trousseau/testing/azure';
import type { AzureKeyVaultEmulator } from '@trousseau/testing/azure';
import { BUILTIN_PROVIDERS, createServerContainer, SERVER_TOKENS, TrousseauServer } from '../src/index.js';
import { removeDir, scratchDir } from './helpers.js';

/** A logger that keeps the fields of every warning. */
function warningsLogger(): { logger: Logger; warnings: Record<string, unknown>[] } {
  const warnings: Record<string, unknown>[] = [];
  const ignore = (): void => undefined;
  const logger: Logger = {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: (fields: unknown) => {
      if (typeof fields === 'object' && fields !== null) warnings.push(fields as Record<string, unknown>);
    },
    error: ignore,
    child: () => logger,
  };
  return { logger, warnings };
}

/** A metrics backend that takes every declaration and throws at every report, as a broken exporter might. */
const reportsThrow: MetricsBackend = {
  counter: <L extends string>(): Counter<L> => ({
    add: () => {
      throw new Error('Added label "outcome" is not included in initial labelset');
    },
  }),
  histogram: <L extends string>(): Histogram<L> => ({
    observe: () => {
      throw new Error('histogram backend failed');
    },
  }),
  gauge: <L extends string>(): Gauge<L> => ({
    set: () => {
      throw new Error('gauge backend failed');
    },
    remove: () => {
      throw new Error('gauge backend failed');
    },
  }),
};

interface Served {
  readonly server: TrousseauServer;
  readonly client: KmsClient;
  readonly warnings: Record<string, unknown>[];
  /** The `/metrics` page. */
  scrape(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Serves one provider instance `main` from a real server on a socket in `dir`; `prepare` registers the
 * test's values under tokens before the server is resolved from the container.
 */
async function serve(
  dir: string,
  provider: { type: string; config: Record<string, unknown> },
  prepare: (container: DependencyContainer) => void,
): Promise<Served> {
  const socket = join(dir, `kms-${randomBytes(4).toString('hex')}.sock`);
  const loaded = parseConfig(
    {
      version: 1,
      socket: { path: socket },
      providers: [{ name: 'main', ...provider }],
      health: { listen: '127.0.0.1:0' },
    },
    join(dir, 'config.yaml'),
    dir,
  );
  const { logger, warnings } = warningsLogger();
  const container = createServerContainer({ loaded, logger });
  prepare(container);
  const server = await TrousseauServer.fromContainer(container);
  await server.listen();
  const client = new KmsClient(socket, { timeoutMs: 10_000 });
  return {
    server,
    client,
    warnings,
    async scrape() {
      const port = server.healthAddress?.port;
      assert.ok(port !== undefined);
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(response.status, 200);
      return response.text();
    },
    async close() {
      client.close();
      await server.close();
    },
  };
}

/** Encrypt and Decrypt (v2) and Encrypt (v1) through the socket; every answer checked. */
async function kmsCalls(client: KmsClient): Promise<void> {
  const seed = randomBytes(32);
  const encrypted = await client.encrypt(seed, 'uid-metrics');
  const decrypted = await client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id });
  assert.deepEqual(decrypted.plaintext, seed);
  const status = await client.status();
  assert.equal(status.healthz, 'ok');
  assert.equal(status.key_id, encrypted.key_id);
  assert.ok((await client.v1Encrypt(randomBytes(32))).cipher.length > 0);
}

function warningsAbout(warnings: Record<string, unknown>[], metric: string): Record<string, unknown>[] {
  return warnings.filter((warning) => warning['metric'] === metric);
}

describe('metrics can never fail a KMS call (real server, Azure provider over the emulator)', () => {
  let dir: string;
  let emulator: AzureKeyVaultEmulator;
  let azure: { type: string; config: Record<string, unknown> };
  before(async () => {
    dir = await scratchDir('trousseau-metrics-');
    const started = await startAzureKeyVaultForProvider({ dir, keyName: 'kek' });
    emulator = started.emulator;
    azure = { type: 'azure', config: started.config };
  });
  after(async () => {
    await emulator.close();
    await removeDir(dir);
  });

  it('serves every call when the provider reports into an instrument declared first with other labels', async () => {
    const served = await serve(dir, azure, (container) => {
      // Something declared the Azure provider's counter first, with other labels: before, a report with
      // the provider's labels threw ("not included in initial labelset") from its `finally`.
      resolveToken(container, SERVER_TOKENS.prometheus).counter({
        name: 'azure_requests_total',
        help: 'declared first by another part',
        labelNames: ['unrelated'],
      });
    });
    try {
      await kmsCalls(served.client);
      await kmsCalls(served.client);
      assert.equal(warningsAbout(served.warnings, 'azure_requests_total').length, 1, 'one warning');
      const text = await served.scrape();
      const dropped = /^trousseau_metric_reports_dropped_total\{metric="azure_requests_total"\} (\d+)$/m.exec(
        text,
      );
      assert.ok(dropped !== null && Number(dropped[1]) >= 4, `every dropped report is counted:\n${text}`);
      assert.match(
        text,
        /^trousseau_azure_request_duration_seconds_count\{provider="main",operation="wrapKey"\} [1-9]/m,
        "the provider's other instruments still report",
      );
      assert.match(text, /^trousseau_grpc_requests_total\{api="v2",rpc="Decrypt",outcome="OK"\} 2$/m);
    } finally {
      await served.close();
    }
  });

  it('serves every call when every report to the metrics backend throws', async () => {
    const served = await serve(dir, azure, (container) => {
      registerValue(container, TOKENS.metricsBackend, reportsThrow);
    });
    try {
      await kmsCalls(served.client);
      await kmsCalls(served.client);
      for (const metric of [
        'azure_requests_total',
        'azure_request_duration_seconds',
        'azure_key_usable',
        'grpc_requests_total',
        'provider_request_duration_seconds',
      ]) {
        assert.equal(warningsAbout(served.warnings, metric).length, 1, `one warning about ${metric}`);
      }
    } finally {
      await served.close();
    }
  });
});

describe('metrics from a provider written for core API 1.0', () => {
  let dir: string;
  before(async () => {
    dir = await scratchDir('trousseau-metrics-legacy-');
    await createKeyRingFile(join(dir, 'keys.json'));
  });
  after(() => removeDir(dir));

  it('are taken by their first report; a later report with other labels is dropped, and the call served', async () => {
    let encrypts = 0;
    const legacy: ProviderDefinition = defineProvider<unknown>({
      name: 'legacy-local',
      coreRange: '^1.0.0',
      configSchema: localProvider.configSchema,
      async create(options, context) {
        const inner: KeyProvider = await localProvider.create(options as never, context);
        return {
          encrypt: async (plaintext, request) => {
            encrypts += 1;
            // The labels change between reports: prom-client threw at the second before.
            context.metrics.increment(
              'legacy_encrypts_total',
              encrypts === 1
                ? { provider: context.instanceName }
                : { provider: context.instanceName, attempt: String(encrypts) },
            );
            return inner.encrypt(plaintext, request);
          },
          decrypt: (input, request) => inner.decrypt(input, request),
          status: (request) => inner.status(request),
          close: () => inner.close(),
        };
      },
    });
    const served = await serve(
      dir,
      { type: 'legacy-local', config: { keyFile: 'keys.json' } },
      (container) => {
        registerValue(container, TOKENS.builtinProviders, {
          ...BUILTIN_PROVIDERS,
          'legacy-local': async () => ({ default: legacy }),
        });
      },
    );
    try {
      await kmsCalls(served.client);
      await kmsCalls(served.client);
      assert.ok(encrypts >= 4, `every encrypt reached the provider (${encrypts})`);
      assert.equal(warningsAbout(served.warnings, 'legacy_encrypts_total').length, 1);
      assert.match(await served.scrape(), /^trousseau_legacy_encrypts_total\{provider="main"\} 1$/m);
    } finally {
      await served.close();
    }
  });
});
