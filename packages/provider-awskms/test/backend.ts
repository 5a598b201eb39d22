import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { startAwsKmsEmulator, type AwsKmsEmulator } from '@trousseau/testing/awskms';
import { randomBytes } from 'node:crypto';

/**
 * Where the provider tests run: the AWS KMS emulator (default), or a real KMS endpoint when
 * TROUSSEAU_TEST_AWS_ENDPOINT is set (credentials and region from the SDK's usual variables; the tests
 * create their own keys there and schedule them for deletion, 7 days, when done).
 */
export interface TestBackend {
  readonly kind: 'emulator' | 'aws';
  readonly region: string;
  readonly endpoint: string;
  /** An SDK client for setting the scene (create keys, disable them): same wire as the provider. */
  readonly admin: KMSClient;
  /** Only against the emulator: fault injection and the request log. */
  readonly emulator: AwsKmsEmulator | undefined;
  /** The provider's `credentials` block (emulator) or undefined (the SDK default chain, real AWS). */
  readonly credentials: Record<string, unknown> | undefined;
  /** The environment the provider's secret references read from. */
  readonly secretEnv: Readonly<Record<string, string | undefined>>;
  createKey(): Promise<{ keyId: string; arn: string }>;
  /** Creates a uniquely named alias for the key and returns its name. */
  createAlias(keyId: string, name?: string): Promise<string>;
  updateAlias(alias: string, keyId: string): Promise<void>;
  disableKey(keyId: string): Promise<void>;
  enableKey(keyId: string): Promise<void>;
  scheduleKeyDeletion(keyId: string): Promise<void>;
  cancelKeyDeletion(keyId: string): Promise<void>;
  close(): Promise<void>;
}

const realEndpoint = process.env.TROUSSEAU_TEST_AWS_ENDPOINT;

/** Said once per test file, so the output tells which backend the suites ran against. */
export const BACKEND_KIND: 'emulator' | 'aws' =
  realEndpoint === undefined || realEndpoint === '' ? 'emulator' : 'aws';

let announced = false;

export async function startBackend(): Promise<TestBackend> {
  if (!announced) {
    announced = true;
    console.log(
      BACKEND_KIND === 'aws'
        ? `# awskms provider tests: running against the REAL AWS KMS endpoint ${realEndpoint ?? ''}`
        : '# awskms provider tests: running against the AWS KMS emulator (set TROUSSEAU_TEST_AWS_ENDPOINT for a real endpoint)',
    );
  }
  const created: string[] = [];
  let emulator: AwsKmsEmulator | undefined;
  let region: string;
  let endpoint: string;
  let credentials: Record<string, unknown> | undefined;
  let secretEnv: Record<string, string | undefined> = {};
  let admin: KMSClient;
  if (BACKEND_KIND === 'aws' && realEndpoint !== undefined) {
    region =
      process.env.AWS_REGION ??
      process.env.AWS_DEFAULT_REGION ??
      /kms(?:-fips)?\.([a-z0-9-]+)\.amazonaws/.exec(realEndpoint)?.[1] ??
      'us-east-1';
    endpoint = realEndpoint;
    admin = new KMSClient({ region, endpoint });
    secretEnv = process.env;
  } else {
    emulator = await startAwsKmsEmulator();
    const credential = emulator.credentials[0];
    if (credential === undefined) throw new Error('emulator without credentials');
    region = emulator.region;
    endpoint = emulator.url;
    admin = new KMSClient({ region, endpoint, credentials: credential, maxAttempts: 1 });
    credentials = {
      accessKeyId: { env: 'TEST_AWS_ACCESS_KEY_ID' },
      secretAccessKey: { env: 'TEST_AWS_SECRET_ACCESS_KEY' },
    };
    secretEnv = {
      TEST_AWS_ACCESS_KEY_ID: credential.accessKeyId,
      TEST_AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
    };
  }
  return {
    kind: BACKEND_KIND,
    region,
    endpoint,
    admin,
    emulator,
    credentials,
    secretEnv,
    async createKey() {
      const output = await admin.send(
        new CreateKeyCommand({ Description: 'trousseau provider test (safe to delete)' }),
      );
      const keyId = output.KeyMetadata?.KeyId;
      const arn = output.KeyMetadata?.Arn;
      if (keyId === undefined || arn === undefined) throw new Error('CreateKey answered without a key');
      created.push(keyId);
      return { keyId, arn };
    },
    async createAlias(keyId, name) {
      const alias = name ?? `alias/trousseau-test-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
      return alias;
    },
    async updateAlias(alias, keyId) {
      await admin.send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    },
    async disableKey(keyId) {
      await admin.send(new DisableKeyCommand({ KeyId: keyId }));
    },
    async enableKey(keyId) {
      await admin.send(new EnableKeyCommand({ KeyId: keyId }));
    },
    async scheduleKeyDeletion(keyId) {
      await admin.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    },
    async cancelKeyDeletion(keyId) {
      await admin.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    },
    async close() {
      if (emulator !== undefined) {
        admin.destroy();
        await emulator.close();
        return;
      }
      // Real AWS: a key cannot be deleted at once; schedule the shortest window.
      for (const keyId of created) {
        await admin
          .send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))
          .catch(() => undefined);
      }
      admin.destroy();
    },
  };
}
