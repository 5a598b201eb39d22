import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status as grpcStatus } from '@grpc/grpc-js';
import { decodeReplicatedEnvelope, digestKeyId, parseConfig } from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import { registerSingleton, registerValue, TOKENS } from '@trousseau/core/wiring';
import { waitUntil } from '@trousseau/testing';
import { startAwsKmsForProvider, type AwsKmsEmulator } from '@trousseau/testing/awskms';
import { startAzureKeyVaultForProvider, type AzureKeyVaultEmulator } from '@trousseau/testing/azure';
import { startVaultForProvider, type VaultEmulator } from '@trousseau/testing/vault';
import { Writable } from 'node:stream';
import { createLogger, createServerContainer, SERVER_TOKENS, TrousseauServer } from '../src/index.js';
import { removeDir, scratchDir } from './helpers.js';

// Replicated encryption end to end: a real Trousseau serving KMS v2 on a socket, each data key wrapped by
// two or three real providers (Vault Transit, AWS KMS, Azure Key Vault) through their real SDK clients
// against the emulators over HTTP(S), and faults made in the emulators, never in the clients.

interface Backends {
  vault: VaultEmulator;
  aws: AwsKmsEmulator;
  awsKeyArn: string;
  azure?: AzureKeyVaultEmulator;
  providers: Record<string, unknown>[];
  env: Record<string, string>;
  close(): Promise<void>;
}

async function startBackends(dir: string, options: { azureKeySize?: 2048 | 4096 } = {}): Promise<Backends> {
  const vaultBackend = await startVaultForProvider({ envPrefix: 'REPLICA_VAULT' });
  const vault = vaultBackend.emulator;
  const aws = await startAwsKmsForProvider({ envPrefix: 'REPLICA_AWS' });
  const providers: Record<string, unknown>[] = [
    {
      name: 'vault-a',
      type: 'vault',
      config: { ...vaultBackend.config, keyRefreshIntervalSeconds: 0.05 },
    },
    { name: 'aws-b', type: 'awskms', config: { ...aws.config, statusRefreshSeconds: 0.05 } },
  ];
  let azure: AzureKeyVaultEmulator | undefined;
  if (options.azureKeySize !== undefined) {
    const started = await startAzureKeyVaultForProvider({ dir, keyName: 'k8s' });
    azure = started.emulator;
    if (options.azureKeySize !== 2048) await azure.createKey('k8s', { size: options.azureKeySize });
    providers.push({ name: 'azure-c', type: 'azure', config: started.config });
  }
  return {
    vault,
    aws: aws.emulator,
    awsKeyArn: String(aws.config['keyId']),
    ...(azure === undefined ? {} : { azure }),
    providers,
    env: { ...aws.env, ...vaultBackend.env },
    async close() {
      await Promise.all([vault.close(), aws.emulator.close(), azure?.close()]);
    },
  };
}

interface Plugin {
  readonly server: TrousseauServer;
  readonly client: KmsClient;
  /** Checks every provider now (instead of waiting for the health interval). */
  refresh(): Promise<void>;
  /** Every JSON log line written so far. */
  logs(): Record<string, unknown>[];
  close(): Promise<void>;
}

async function serve(
  dir: string,
  backends: Backends,
  policy: { encryptWith: string[]; minCopies?: number },
): Promise<Plugin> {
  const socket = join(dir, `kms-${randomBytes(3).toString('hex')}.sock`);
  const loaded = parseConfig(
    {
      version: 1,
      socket: { path: socket },
      encryptWith: policy.encryptWith,
      ...(policy.minCopies === undefined ? {} : { minCopies: policy.minCopies }),
      providers: backends.providers,
      kms: { healthCheckIntervalSeconds: 3600 },
    },
    join(dir, 'config.yaml'),
    dir,
  );
  let log = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      log += chunk.toString();
      callback();
    },
  });
  const container = createServerContainer({
    loaded,
    logger: createLogger({ level: 'info', format: 'json', destination: sink }),
  });
  registerValue(container, TOKENS.env, { ...process.env, ...backends.env });
  // No /metrics listener here: the tests read the registry, so it is made the metrics backend explicitly.
  registerSingleton(container, TOKENS.metricsBackend, (resolve) => resolve(SERVER_TOKENS.prometheus));
  const server = await TrousseauServer.fromContainer(container);
  try {
    await server.listen();
  } catch (error) {
    await server.close();
    throw error;
  }
  const client = new KmsClient(socket, { timeoutMs: 20_000 });
  return {
    server,
    client,
    refresh: () => server.broker.refreshHealth(),
    logs: () =>
      log
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async close() {
      client.close();
      await server.close();
    },
  };
}

function grpcCode(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number'
    ? error.code
    : undefined;
}

function providerKeyId(plugin: Plugin, name: string): string {
  const keyId = plugin.server.broker.health().find((health) => health.name === name)?.keyId;
  assert.ok(keyId !== undefined, `no key id for ${name}`);
  return keyId;
}

async function metric(plugin: Plugin, line: RegExp): Promise<number> {
  const text = await plugin.server.metrics.registry.metrics();
  const found = text.split('\n').find((candidate) => line.test(candidate));
  return found === undefined ? 0 : Number(found.split(' ').pop());
}

describe('replicated encryption over Vault and AWS KMS (two real providers)', () => {
  let dir: string;
  let backends: Backends;
  let plugin: Plugin;

  before(async () => {
    dir = await scratchDir('trousseau-replica-');
    backends = await startBackends(dir);
    plugin = await serve(dir, backends, { encryptWith: ['vault-a', 'aws-b'] });
  });
  after(async () => {
    await plugin?.close();
    await backends?.close();
    if (dir !== undefined) await removeDir(dir);
  });

  it('wraps every data key with both, in one version 4 envelope whose key id is derived from both', async () => {
    const status = await plugin.client.status();
    assert.equal(status.healthz, 'ok');
    const dek = randomBytes(32);
    const encrypted = await plugin.client.encrypt(dek);
    assert.equal(encrypted.key_id, status.key_id);
    assert.match(encrypted.key_id, /^trousseau-replicated:2:[0-9a-f]{32}$/);
    const envelope = decodeReplicatedEnvelope(encrypted.ciphertext);
    assert.deepEqual(
      envelope.copies.map((copy) => copy.instance),
      ['vault-a', 'aws-b'],
    );
    assert.deepEqual(
      Buffer.from(envelope.copies[0]?.keyIdDigest ?? []),
      Buffer.from(digestKeyId(providerKeyId(plugin, 'vault-a'))),
    );
    assert.deepEqual(
      Buffer.from(envelope.copies[1]?.keyIdDigest ?? []),
      Buffer.from(digestKeyId(providerKeyId(plugin, 'aws-b'))),
    );
    assert.equal(envelope.copies[1]?.keyRef, backends.awsKeyArn);
    assert.ok(encrypted.ciphertext.length <= 1024);
    const decrypted = await plugin.client.decrypt({
      ciphertext: encrypted.ciphertext,
      keyId: encrypted.key_id,
    });
    assert.deepEqual(Buffer.from(decrypted.plaintext), dek);
    assert.equal(
      await metric(
        plugin,
        /^trousseau_replicated_copies_total\{provider="aws-b",operation="encrypt",result="written"\}/,
      ),
      1,
    );
  });

  it('serves KMS v1 too: the same version 4 envelope, opened without a key id', async () => {
    const dek = randomBytes(32);
    const encrypted = await plugin.client.v1Encrypt(dek);
    assert.equal(decodeReplicatedEnvelope(encrypted.cipher).copies.length, 2);
    const decrypted = await plugin.client.v1Decrypt(encrypted.cipher);
    assert.deepEqual(Buffer.from(decrypted.plain), dek);
  });

  it("falls over within the caller's deadline when the first KMS hangs without answering", async () => {
    const dek = randomBytes(32);
    const encrypted = await plugin.client.encrypt(dek);
    // Vault's copy comes first; Vault now takes requests and never answers.
    backends.vault.faults.holdRequests = true;
    try {
      const started = performance.now();
      const decrypted = await plugin.client.decrypt(
        { ciphertext: encrypted.ciphertext, keyId: encrypted.key_id },
        3_000,
      );
      assert.deepEqual(Buffer.from(decrypted.plaintext), dek);
      assert.ok(performance.now() - started < 3_000);
    } finally {
      backends.vault.faults.holdRequests = false;
    }
  });

  it('refuses an envelope with any copy altered, even when another copy would open it', async () => {
    const encrypted = await plugin.client.encrypt(randomBytes(32));
    const envelope = decodeReplicatedEnvelope(encrypted.ciphertext);
    const awsPayload = envelope.copies[1]?.payload;
    assert.ok(awsPayload !== undefined);
    // A bit of AWS's copy: Vault's copy (tried first) decrypts, but the tag covers every copy.
    const offset = encrypted.ciphertext.length - 16 - awsPayload.length + 5;
    const changed = Buffer.from(encrypted.ciphertext);
    changed[offset] = (changed[offset] ?? 0) ^ 0x01;
    await assert.rejects(
      plugin.client.decrypt({ ciphertext: changed, keyId: encrypted.key_id }),
      (error: unknown) => grpcCode(error) === grpcStatus.INVALID_ARGUMENT,
    );
    // A bit of Vault's copy, tried first: refused as not authentic, never skipped for AWS's good copy.
    const vaultReceived = backends.vault.received;
    const inVault = Buffer.from(encrypted.ciphertext);
    const vaultPayloadStart = 13 + 1 + 'vault-a'.length + 8 + 1 + 2;
    // Another valid base64 letter inside `vault:v1:<base64>`: Vault is asked and its AES-GCM check fails.
    const letter = vaultPayloadStart + 12;
    inVault[letter] = inVault[letter] === 0x41 ? 0x42 : 0x41;
    const awsReceived = backends.aws.received;
    await assert.rejects(
      plugin.client.decrypt({ ciphertext: inVault, keyId: encrypted.key_id }),
      (error: unknown) => grpcCode(error) === grpcStatus.INVALID_ARGUMENT,
    );
    assert.ok(backends.vault.received > vaultReceived, 'Vault was asked');
    assert.equal(backends.aws.received, awsReceived, 'AWS was not asked after Vault refused its copy');
  });

  it('fails Encrypt while one KMS is down (every copy required), naming it; Status says which', async () => {
    backends.aws.faults.dropConnections = true;
    try {
      await assert.rejects(plugin.client.encrypt(randomBytes(32)), (error: unknown) => {
        assert.equal(grpcCode(error), grpcStatus.UNAVAILABLE);
        assert.match(String((error as Error).message), /made 1 of the 2 copies.*"aws-b"/);
        return true;
      });
      await plugin.refresh();
      const status = await plugin.client.status();
      assert.notEqual(status.healthz, 'ok');
      assert.match(status.healthz, /1 of 2 providers can wrap a data key, the policy needs 2: "aws-b"/);
    } finally {
      backends.aws.faults.reset();
    }
    await plugin.refresh();
    assert.equal((await plugin.client.status()).healthz, 'ok');
    await plugin.client.encrypt(randomBytes(32));
  });

  it('decrypts with the next copy when the first KMS is down, within the deadline', async () => {
    const dek = randomBytes(32);
    const encrypted = await plugin.client.encrypt(dek);
    backends.vault.seal();
    try {
      // The cached health still says Vault is healthy: its copy is tried first, fails, and AWS's opens.
      const vaultReceived = backends.vault.received;
      const before = await metric(
        plugin,
        /^trousseau_replicated_copies_total\{provider="vault-a",operation="decrypt",result="failed_over"\}/,
      );
      const decrypted = await plugin.client.decrypt(
        { ciphertext: encrypted.ciphertext, keyId: encrypted.key_id },
        3_000,
      );
      assert.deepEqual(Buffer.from(decrypted.plaintext), dek);
      assert.ok(backends.vault.received > vaultReceived, 'the Vault copy was tried first');
      // Logged per copy: Vault's failure, then the copy that opened it.
      const lines = plugin.logs();
      assert.ok(lines.some((line) => line['msg'] === 'decrypt failed' && line['provider'] === 'vault-a'));
      assert.ok(
        lines.some(
          (line) =>
            line['msg'] === 'decrypted with a later copy' &&
            line['provider'] === 'aws-b' &&
            JSON.stringify(line['failedOver']) === '["vault-a"]',
        ),
      );
      assert.ok(!JSON.stringify(lines).includes(dek.toString('base64')), 'no data key in the log');
      assert.equal(
        await metric(
          plugin,
          /^trousseau_replicated_copies_total\{provider="vault-a",operation="decrypt",result="failed_over"\}/,
        ),
        before + 1,
      );
    } finally {
      backends.vault.unseal();
    }
  });

  it('changes the key id when one provider rotates, and never repeats one', async () => {
    await plugin.refresh();
    const first = (await plugin.client.status()).key_id;
    const old = await plugin.client.encrypt(randomBytes(32));
    backends.vault.rotateKey('k8s');
    await waitUntil(async () => {
      await plugin.refresh();
      return (await plugin.client.status()).key_id !== first;
    }, 'the key id changes after a Vault rotation');
    const second = (await plugin.client.status()).key_id;
    const fresh = await plugin.client.encrypt(randomBytes(32));
    assert.equal(fresh.key_id, second);
    backends.aws.rotateKeyMaterial(backends.awsKeyArn);
    await waitUntil(async () => {
      await plugin.refresh();
      return (await plugin.client.status()).key_id !== second;
    }, 'the key id changes after an AWS rotation');
    const third = (await plugin.client.status()).key_id;
    assert.equal(new Set([first, second, third]).size, 3);
    // Data written under the first key id still decrypts with it.
    const decrypted = await plugin.client.decrypt({ ciphertext: old.ciphertext, keyId: old.key_id });
    assert.equal(decrypted.plaintext.length, 32);
  });
});

describe('replicated encryption with minCopies, and a key deleted for good', () => {
  let dir: string;
  let backends: Backends;

  before(async () => {
    dir = await scratchDir('trousseau-replica-');
    backends = await startBackends(dir);
  });
  after(async () => {
    await backends?.close();
    if (dir !== undefined) await removeDir(dir);
  });

  it('minCopies 1: Encrypt goes on with one copy while a KMS is down, and that copy decrypts', async () => {
    const plugin = await serve(dir, backends, { encryptWith: ['aws-b', 'vault-a'], minCopies: 1 });
    try {
      backends.aws.faults.dropConnections = true;
      await plugin.refresh();
      const status = await plugin.client.status();
      assert.equal(status.healthz, 'ok', 'one healthy provider meets the policy');
      const dek = randomBytes(32);
      const encrypted = await plugin.client.encrypt(dek);
      assert.equal(encrypted.key_id, status.key_id);
      const envelope = decodeReplicatedEnvelope(encrypted.ciphertext);
      assert.deepEqual(
        envelope.copies.map((copy) => copy.instance),
        ['vault-a'],
      );
      assert.ok(
        plugin
          .logs()
          .some(
            (line) =>
              line['msg'] === 'encrypted with fewer copies than providers listed' &&
              JSON.stringify(line['missing']) === '["aws-b"]',
          ),
      );
      const decrypted = await plugin.client.decrypt({
        ciphertext: encrypted.ciphertext,
        keyId: encrypted.key_id,
      });
      assert.deepEqual(Buffer.from(decrypted.plaintext), dek);
      // A KMS that hangs instead: Encrypt still answers within the caller's deadline, with Vault's copy.
      backends.aws.faults.reset();
      backends.aws.faults.holdRequests = true;
      const started = performance.now();
      const held = await plugin.client.encrypt(randomBytes(32), '', 3_000);
      assert.ok(performance.now() - started < 3_000);
      assert.deepEqual(
        decodeReplicatedEnvelope(held.ciphertext).copies.map((copy) => copy.instance),
        ['vault-a'],
      );
      backends.aws.faults.holdRequests = false;
      backends.aws.faults.dropConnections = true;
      // Both down: the policy cannot be met.
      backends.vault.seal();
      try {
        await assert.rejects(
          plugin.client.encrypt(randomBytes(32)),
          (error: unknown) => grpcCode(error) === grpcStatus.UNAVAILABLE,
        );
      } finally {
        backends.vault.unseal();
      }
    } finally {
      backends.aws.faults.reset();
      await plugin.close();
    }
  });

  it('a key deleted for good: old data still reads through the other copy; Status fails with an error', async () => {
    const plugin = await serve(dir, backends, { encryptWith: ['aws-b', 'vault-a'] });
    try {
      const dek = randomBytes(32);
      const encrypted = await plugin.client.encrypt(dek);
      backends.aws.scheduleKeyDeletion(backends.awsKeyArn, 7);
      // Health not refreshed yet: the AWS copy is tried first, its key is gone, Vault's copy opens.
      const decrypted = await plugin.client.decrypt({
        ciphertext: encrypted.ciphertext,
        keyId: encrypted.key_id,
      });
      assert.deepEqual(Buffer.from(decrypted.plaintext), dek);
      await plugin.refresh();
      // Every copy is required and one key can never come back: Status fails with an error.
      await assert.rejects(
        plugin.client.status(),
        (error: unknown) => grpcCode(error) === grpcStatus.FAILED_PRECONDITION,
      );
      const again = await plugin.client.decrypt({
        ciphertext: encrypted.ciphertext,
        keyId: encrypted.key_id,
      });
      assert.deepEqual(Buffer.from(again.plaintext), dek);
    } finally {
      backends.aws.cancelKeyDeletion(backends.awsKeyArn);
      backends.aws.enableKey(backends.awsKeyArn);
      await plugin.close();
    }
  });
});

describe('replicated encryption over three providers, and the KMS v2 size limit', () => {
  it('Vault + AWS KMS + Azure RSA-2048: three copies fit, and any one of them decrypts', async () => {
    const dir = await scratchDir('trousseau-replica-');
    const backends = await startBackends(dir, { azureKeySize: 2048 });
    const plugin = await serve(dir, backends, { encryptWith: ['vault-a', 'aws-b', 'azure-c'] });
    try {
      const dek = randomBytes(32);
      const encrypted = await plugin.client.encrypt(dek);
      const envelope = decodeReplicatedEnvelope(encrypted.ciphertext);
      assert.deepEqual(
        envelope.copies.map((copy) => copy.instance),
        ['vault-a', 'aws-b', 'azure-c'],
      );
      assert.equal(envelope.copies[2]?.payload.length, 256);
      assert.ok(encrypted.ciphertext.length <= 1024, `${encrypted.ciphertext.length} bytes`);
      // Vault and AWS both down: Azure's copy alone opens it.
      backends.vault.seal();
      backends.aws.faults.dropConnections = true;
      await plugin.refresh();
      const decrypted = await plugin.client.decrypt(
        { ciphertext: encrypted.ciphertext, keyId: encrypted.key_id },
        10_000,
      );
      assert.deepEqual(Buffer.from(decrypted.plaintext), dek);
    } finally {
      backends.vault.unseal();
      backends.aws.faults.reset();
      await plugin.close();
      await backends.close();
      await removeDir(dir);
    }
  });

  it('Vault + AWS KMS + Azure RSA-4096: refused at start, naming each provider and what it takes', async () => {
    const dir = await scratchDir('trousseau-replica-');
    const backends = await startBackends(dir, { azureKeySize: 4096 });
    try {
      await assert.rejects(
        serve(dir, backends, { encryptWith: ['vault-a', 'aws-b', 'azure-c'] }),
        (error: unknown) => {
          const message = String((error as Error).message);
          assert.match(
            message,
            /the 3 copies of a 32-byte data key take up to \d+ bytes, over the 1024 bytes KMS v2 stores/,
          );
          assert.match(message, /vault-a \d+ \(ciphertext up to \d+/);
          assert.match(message, /aws-b \d+ \(ciphertext up to 216, key reference up to 96\)/);
          assert.match(message, /azure-c \d+ \(ciphertext up to 512,/);
          return true;
        },
      );
      // Two of them fit: the same Azure key with Vault alone starts.
      const plugin = await serve(dir, backends, { encryptWith: ['vault-a', 'azure-c'] });
      try {
        const encrypted = await plugin.client.encrypt(randomBytes(32));
        assert.equal(decodeReplicatedEnvelope(encrypted.ciphertext).copies[1]?.payload.length, 512);
      } finally {
        await plugin.close();
      }
    } finally {
      await backends.close();
      await removeDir(dir);
    }
  });
});
