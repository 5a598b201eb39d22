// The command as shipped (dist/bundle, scripts/bundle-server.mjs) serving with each built-in provider that
// the bundle keeps in a file of its own (provider-vault.cjs, provider-awskms.cjs, provider-azure.cjs):
// each loads when its config names it, takes core from cli.cjs, and answers real calls against the
// emulator of its service. The in-process tests run the unbundled packages; this is the bundle's check.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KmsClient } from '@trousseau/core/grpc';
import { startNodeProcess } from '@trousseau/testing';
import { startAwsKmsForProvider } from '@trousseau/testing/awskms';
import { startAzureKeyVaultForProvider } from '@trousseau/testing/azure';
import { startVaultForProvider } from '@trousseau/testing/vault';
import { BIN, removeDir, scratchDir } from './helpers.js';

interface Backend {
  readonly config: Record<string, unknown>;
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

const BACKENDS: Record<string, (dir: string) => Promise<Backend>> = {
  vault: async () => {
    const { emulator, config, env } = await startVaultForProvider();
    return { config, env, close: () => emulator.close() };
  },
  awskms: async () => {
    const { emulator, config, env } = await startAwsKmsForProvider();
    return { config, env, close: () => emulator.close() };
  },
  azure: async (dir) => {
    const { emulator, config } = await startAzureKeyVaultForProvider({ dir, keyName: 'k8s' });
    return { config, env: {}, close: () => emulator.close() };
  },
};

/** The `starting trousseau` line a start logs first (serve.ts). */
function startingLine(output: string): Record<string, unknown> {
  const line = output.split('\n').find((candidate) => candidate.includes('"starting trousseau"'));
  assert.ok(line !== undefined, `no starting line in:\n${output}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Where every test here keeps its sockets and configs, each under names of its own. */
let dir: string;
before(async () => {
  dir = await scratchDir('trousseau-shipped-');
});
after(async () => {
  await removeDir(dir);
});

describe('the shipped command starts from its code cache', () => {
  // The cache's own cases (stale, damaged, absent) are in code-cache.test.ts; this is the command itself.
  for (const [name, nodeOptions, expected] of [
    ['as built', '', 'accepted'],
    ['with a V8 flag in NODE_OPTIONS, which V8 refuses the cache for', '--max-semi-space-size=8', 'rejected'],
  ] as const) {
    test(`${name}: serves, and the starting line says "${expected}"`, async () => {
      const socket = join(dir, `${expected}.sock`);
      const serve = startNodeProcess(BIN, ['serve', '--socket', socket], {
        cwd: dir,
        env: { ...process.env, NODE_OPTIONS: nodeOptions },
      });
      const client = new KmsClient(socket, { timeoutMs: 20_000 });
      try {
        await serve.waitFor('trousseau is serving');
        assert.equal((await client.status()).healthz, 'ok');
      } finally {
        client.close();
        assert.equal(await serve.stop(), 0, serve.output());
      }
      assert.equal(startingLine(serve.output())['codeCache'], expected);
    });
  }
});

describe('the bundle: one core, in cli.cjs', () => {
  // Core's checks are shape checks, so a part with a copy of its own would still answer calls; what would
  // differ is state the server and the providers share. The build refuses such a part
  // (scripts/bundle-server.mjs); this holds the shipped files to it.
  const coreDefinition = /CORE_API_VERSION\s*=\s*"/;
  test('cli.cjs defines core, and each part that uses core takes it from cli.cjs', async () => {
    const bundleDir = dirname(BIN);
    assert.match(await readFile(join(bundleDir, 'cli.cjs'), 'utf8'), coreDefinition);
    for (const part of ['provider-vault', 'provider-awskms', 'provider-azure', 'etcd-report']) {
      const source = await readFile(join(bundleDir, `${part}.cjs`), 'utf8');
      assert.doesNotMatch(source, coreDefinition, `${part}.cjs defines a core of its own`);
      assert.ok(
        source.includes('require("./cli.cjs").__trousseauShared["@trousseau/core"]'),
        `${part}.cjs does not take core from cli.cjs`,
      );
    }
  });
});

describe('the shipped command with each built-in provider', () => {
  for (const [type, start] of Object.entries(BACKENDS)) {
    test(`${type}: serves Encrypt, Decrypt and Status, and stops cleanly`, async () => {
      const backend = await start(dir);
      const socket = join(dir, `${type}.sock`);
      const config = join(dir, `${type}.yaml`);
      // JSON is YAML.
      await writeFile(
        config,
        JSON.stringify({
          version: 1,
          socket: { path: socket },
          providers: [{ name: type, type, config: backend.config }],
        }),
      );
      const serve = startNodeProcess(BIN, ['serve', '--config', config], {
        cwd: dir,
        env: { ...process.env, ...backend.env },
      });
      const client = new KmsClient(socket, { timeoutMs: 20_000 });
      try {
        await serve.waitFor('trousseau is serving');
        const plaintext = Buffer.from(`a data key for ${type}`);
        const encrypted = await client.encrypt(plaintext, 'uid-1');
        assert.match(encrypted.key_id, new RegExp(`^${type}:`));
        const decrypted = await client.decrypt({
          ciphertext: encrypted.ciphertext,
          keyId: encrypted.key_id,
          uid: 'uid-2',
        });
        assert.deepEqual(decrypted.plaintext, plaintext);
        const status = await client.status();
        assert.equal(status.healthz, 'ok');
        assert.equal(status.key_id, encrypted.key_id);
      } finally {
        client.close();
        const code = await serve.stop();
        await backend.close();
        assert.equal(code, 0, serve.output());
      }
      assert.match(serve.output(), /trousseau stopped/);
    });
  }
});
