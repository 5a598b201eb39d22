import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseConfig } from '@trousseau/core';
import { KmsClient } from '@trousseau/core/grpc';
import { registerValue, TOKENS } from '@trousseau/core/wiring';
import { createKeyRingFile } from '@trousseau/provider-local';
import { startAwsKmsForProvider } from '@trousseau/testing/awskms';
import { startAzureKeyVaultForProvider } from '@trousseau/testing/azure';
import { startVaultForProvider } from '@trousseau/testing/vault';
import { createLogger, createServerContainer, TrousseauServer } from '../src/index.js';
import { removeDir, scratchDir } from './helpers.js';

/** A provider set up for the test: its config entry, the secrets that must never be logged, and cleanup. */
export interface RedactionSubject {
  readonly entry: { name: string; type: string; config: Record<string, unknown> };
  readonly secrets: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  cleanup(): Promise<void>;
}

/** Every textual form a byte string can take in a log line. */
function forms(bytes: Buffer): string[] {
  return [
    bytes.toString('hex'),
    bytes.toString('base64'),
    bytes.toString('base64url').replace(/=+$/, ''),
    // A Buffer passed to the logger serialises as {"type":"Buffer","data":[...]}.
    bytes.toJSON().data.join(','),
  ];
}

/**
 * Runs real traffic through the socket at debug level (v2 and v1beta1, good and bad requests) with the
 * given provider, and checks that no plaintext and none of the provider's secrets reach the log.
 */
export async function assertNothingSecretLogged(
  makeSubject: (dir: string) => Promise<RedactionSubject>,
): Promise<void> {
  const dir = await scratchDir();
  const subject = await makeSubject(dir);
  let log = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      log += chunk.toString();
      callback();
    },
  });
  const socket = join(dir, 'kms.sock');
  const loaded = parseConfig(
    { version: 1, socket: { path: socket }, providers: [subject.entry] },
    join(dir, 'c.yaml'),
    dir,
  );
  const container = createServerContainer({
    loaded,
    logger: createLogger({ level: 'trace', format: 'json', destination: sink }),
  });
  if (subject.env !== undefined) registerValue(container, TOKENS.env, { ...process.env, ...subject.env });
  const server = await TrousseauServer.fromContainer(container);
  const plaintexts: Buffer[] = [];
  try {
    await server.listen();
    const client = new KmsClient(socket);
    try {
      for (let i = 0; i < 5; i += 1) {
        const seed = randomBytes(32);
        plaintexts.push(seed);
        const encrypted = await client.encrypt(seed, `uid-${i}`);
        assert.deepEqual(
          (await client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id })).plaintext,
          seed,
        );
        const dek = randomBytes(32);
        plaintexts.push(dek);
        const cipher = (await client.v1Encrypt(dek)).cipher;
        assert.deepEqual((await client.v1Decrypt(cipher)).plain, dek);
        const tampered = Buffer.from(encrypted.ciphertext);
        tampered[tampered.length - 2] = (tampered[tampered.length - 2] ?? 0) ^ 0x10;
        await assert.rejects(client.decrypt({ ciphertext: tampered, keyId: encrypted.key_id }));
      }
      const text = Buffer.from('a recognisable plaintext that must not be logged', 'utf8');
      plaintexts.push(text);
      await client.encrypt(text);
      await server.broker.refreshHealth();
    } finally {
      client.close();
    }
  } finally {
    await server.close();
    await subject.cleanup();
    await removeDir(dir);
  }
  assert.ok(
    log.includes('"level":10') || log.includes('"level":20'),
    'the test must run with debug lines in the log',
  );
  assert.ok(log.includes('kms call'), 'calls were logged at debug level');
  const callLines = log.split('\n').filter((line) => line.includes('"msg":"kms call"'));
  assert.ok(
    callLines.some((line) => line.includes('"requestId":"uid-0"') && line.includes('"rpc":"Encrypt"')),
    "a call's log line carries the apiserver's uid as requestId",
  );
  assert.ok(
    callLines.every((line) => line.includes('"requestId":')),
    'every call line has a request id',
  );
  for (const plaintext of plaintexts) {
    for (const form of [
      ...forms(plaintext),
      ...(plaintext.length > 32 ? [plaintext.toString('utf8')] : []),
    ]) {
      assert.ok(!log.includes(form), `a plaintext reached the log (${form.slice(0, 8)}...)`);
    }
  }
  assert.doesNotMatch(log, /Bearer\s+[A-Za-z0-9._~+/-]{8}/, 'a bearer token reached the log');
  assert.doesNotMatch(log, /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/, 'a JWT reached the log');
  assert.doesNotMatch(log, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key reached the log');
  assert.doesNotMatch(log, /\b(s|hvs|hvb)\.[A-Za-z0-9]{24}/, 'a Vault token reached the log');
  for (const secret of subject.secrets) {
    assert.ok(secret.length >= 8, 'a secret to look for must be long enough to mean something');
    assert.ok(!log.includes(secret), `a secret reached the log (${secret.slice(0, 4)}...)`);
  }
}

describe('no secret reaches a log line, at trace level, with real traffic', () => {
  it('local provider: no plaintext, no key material', async () => {
    await assertNothingSecretLogged(async (dir) => {
      const keyFile = join(dir, 'keys.json');
      await createKeyRingFile(keyFile);
      const ring = JSON.parse(await readFile(keyFile, 'utf8')) as { keys: { material: string }[] };
      const material = Buffer.from(ring.keys[0]?.material ?? '', 'base64');
      return {
        entry: { name: 'local', type: 'local', config: { keyFile } },
        secrets: forms(material),
        cleanup: async () => undefined,
      };
    });
  });

  it('awskms provider: no plaintext, no secret access key', async () => {
    await assertNothingSecretLogged(async () => {
      const { emulator, config, env, secretAccessKey } = await startAwsKmsForProvider();
      return {
        entry: { name: 'aws', type: 'awskms', config },
        env,
        secrets: [secretAccessKey],
        cleanup: () => emulator.close(),
      };
    });
  });

  it('azure provider: no plaintext, no client secret, no bearer token', async () => {
    await assertNothingSecretLogged(async (dir) => {
      const { emulator, config } = await startAzureKeyVaultForProvider({ dir, keyName: 'k8s' });
      return {
        entry: { name: 'azure', type: 'azure', config },
        secrets: [emulator.clientSecret],
        cleanup: () => emulator.close(),
      };
    });
  });

  it('vault provider with a token: no plaintext, no token', async () => {
    await assertNothingSecretLogged(async () => {
      const {
        emulator: vault,
        config,
        env,
        token,
      } = await startVaultForProvider({
        envPrefix: 'REDACTION_VAULT',
      });
      return {
        entry: { name: 'vault', type: 'vault', config },
        env,
        secrets: [token, vault.rootToken],
        cleanup: () => vault.close(),
      };
    });
  });

  it('vault provider with AppRole: no plaintext, no secret id, no issued token', async () => {
    await assertNothingSecretLogged(async () => {
      // The key and the kms policy; the token made with them is not used (AppRole logs in for its own).
      const { emulator: vault } = await startVaultForProvider();
      const roleId = `role-${randomBytes(8).toString('hex')}`;
      const secretId = `secret-${randomBytes(12).toString('hex')}`;
      vault.configureAppRole({
        roleName: 'trousseau',
        roleId,
        secretId,
        policies: ['kms'],
        tokenTtlSeconds: 3600,
      });
      return {
        entry: {
          name: 'vault',
          type: 'vault',
          config: {
            address: vault.url,
            keyName: 'k8s',
            auth: {
              method: 'approle',
              roleId: { env: 'REDACTION_ROLE_ID' },
              secretId: { env: 'REDACTION_SECRET_ID' },
            },
          },
        },
        env: { REDACTION_ROLE_ID: roleId, REDACTION_SECRET_ID: secretId },
        secrets: [secretId, vault.rootToken],
        cleanup: () => vault.close(),
      };
    });
  });
});
