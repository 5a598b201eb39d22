import assert from 'node:assert/strict';
import { DescribeKeyCommand } from '@aws-sdk/client-kms';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import {
  createSecretReader,
  isTrousseauError,
  keyIdDigest,
  loadConfigFile,
  outcomeOf,
  silentLogger,
  systemClock,
  type EncryptResult,
  type ErrorCode,
  type KeyProvider,
  type Metrics,
  type ProviderContext,
  type RequestContext,
  type TrousseauError,
} from '@trousseau/core';
import { RecordingMetrics, testRequestContext } from '@trousseau/testing';
import provider, { AwsKmsProvider, awsKmsOptionsSchema } from '../src/index.js';
import { BACKEND_KIND, startBackend, type TestBackend } from './backend.js';

const emulatorOnly = BACKEND_KIND === 'emulator' ? {} : { skip: 'needs the emulator (fault injection)' };

function contextFor(
  backend: TestBackend,
  env = backend.secretEnv,
  metrics: Metrics = new RecordingMetrics(),
): ProviderContext {
  return {
    instanceName: 'aws-test',
    logger: silentLogger,
    metrics,
    clock: systemClock,
    configDir: process.cwd(),
    secrets: createSecretReader(process.cwd(), env),
  };
}

/** Builds the provider the way the server does: the config block through the schema, then create(). */
async function makeProvider(
  backend: TestBackend,
  config: Record<string, unknown>,
  context: ProviderContext = contextFor(backend),
): Promise<AwsKmsProvider> {
  const options = awsKmsOptionsSchema.parse({
    region: backend.region,
    endpoint: backend.endpoint,
    statusRefreshSeconds: 0,
    ...(backend.credentials === undefined ? {} : { credentials: backend.credentials }),
    ...config,
  });
  const made = await provider.create(options, context);
  assert.ok(made instanceof AwsKmsProvider);
  return made;
}

async function expectCode(
  work: Promise<unknown>,
  code: ErrorCode,
  message?: RegExp,
): Promise<TrousseauError> {
  let caught: unknown;
  await assert.rejects(work, (error: unknown) => {
    caught = error;
    assert.ok(isTrousseauError(error), `expected a TrousseauError, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
  assert.ok(isTrousseauError(caught));
  return caught;
}

/** Every ciphertext still decrypts to `plaintext` (older key versions or keys included). */
async function assertAllOpen(
  instance: KeyProvider,
  sealed: readonly EncryptResult[],
  plaintext: Buffer,
): Promise<void> {
  for (const result of sealed) {
    const opened = await instance.decrypt(
      { ciphertext: result.ciphertext, keyRef: result.keyRef ?? '' },
      testRequestContext(),
    );
    assert.deepEqual(Buffer.from(opened), plaintext);
  }
}

describe(`awskms provider (${BACKEND_KIND})`, () => {
  let backend: TestBackend;
  const providers: AwsKmsProvider[] = [];
  const open = async (
    config: Record<string, unknown>,
    context?: ProviderContext,
  ): Promise<AwsKmsProvider> => {
    const made = await makeProvider(backend, config, context);
    providers.push(made);
    return made;
  };
  const ctx = (timeoutMs = 5_000): RequestContext => testRequestContext(timeoutMs);

  before(async () => {
    backend = await startBackend();
  });
  after(async () => {
    for (const made of providers) await made.close();
    await backend.close();
  });

  it('addresses a key by bare id, key ARN, alias name and alias ARN, with one key id', async () => {
    const key = await backend.createKey();
    const alias = await backend.createAlias(key.keyId);
    const aliasArn = key.arn.replace(/:key\/.*$/, `:${alias}`);
    const forms = [key.keyId, key.arn, alias, aliasArn];
    const instances = await Promise.all(forms.map((keyId) => open({ keyId })));
    const keyIds = new Set<string>();
    for (const instance of instances) {
      const status = await instance.status(ctx());
      assert.ok(status.healthy, JSON.stringify(status));
      keyIds.add(status.keyId);
      assert.ok(status.keyId.startsWith(`awskms:${key.arn}:`), status.keyId);
    }
    assert.equal(keyIds.size, 1, 'every way of naming the key gives the same key id');
    const plaintext = randomBytes(32);
    const sealed = await instances[2]!.encrypt(plaintext, ctx());
    assert.equal(sealed.keyRef, key.arn);
    assert.equal(sealed.keyId, [...keyIds][0]);
    const opened = await instances[0]!.decrypt(
      { ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' },
      ctx(),
    );
    assert.deepEqual(Buffer.from(opened), plaintext);
  });

  it('enforces the encryption context: another context fails with INVALID_ARGUMENT', async () => {
    const key = await backend.createKey();
    const a = await open({ keyId: key.keyId, encryptionContext: { cluster: 'a', app: 'kube-apiserver' } });
    const b = await open({ keyId: key.keyId, encryptionContext: { cluster: 'b', app: 'kube-apiserver' } });
    const none = await open({ keyId: key.keyId });
    const sealed = await a.encrypt(randomBytes(32), ctx());
    const input = { ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' };
    for (const other of [b, none]) {
      const error = await expectCode(
        other.decrypt(input, ctx()),
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        /encryption context/,
      );
      assert.equal(outcomeOf(error), 'INVALID_ARGUMENT');
    }
    const statusA = await a.status(ctx());
    const statusB = await b.status(ctx());
    assert.ok(statusA.healthy && statusB.healthy);
    assert.notEqual(statusA.keyId, statusB.keyId, 'the context is part of the key id');
    assert.equal((await a.decrypt(input, ctx())).length, 32);
  });

  it('refuses a ciphertext whose envelope names another key (IncorrectKeyException -> INVALID_ARGUMENT)', async () => {
    const key = await backend.createKey();
    const other = await backend.createKey();
    const instance = await open({ keyId: key.keyId });
    const sealed = await instance.encrypt(randomBytes(32), ctx());
    await expectCode(
      instance.decrypt({ ciphertext: sealed.ciphertext, keyRef: other.arn }, ctx()),
      'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
    );
    await expectCode(
      instance.decrypt({ ciphertext: sealed.ciphertext, keyRef: 'not-an-arn' }, ctx()),
      'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
    );
  });

  it('shows a disabled or pending-deletion key in Status as gone, and fails encryption with KEY_GONE', async () => {
    const key = await backend.createKey();
    const instance = await open({ keyId: key.keyId });
    const healthy = await instance.status(ctx());
    assert.ok(healthy.healthy);
    const sealed = await instance.encrypt(randomBytes(32), ctx());

    await backend.disableKey(key.keyId);
    const disabled = await instance.status(ctx());
    assert.equal(disabled.healthy, false);
    assert.ok(!disabled.healthy);
    assert.equal(disabled.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    assert.equal(disabled.keyId, healthy.keyId, 'the last good key id is kept');
    assert.match(disabled.reason, /Disabled/);
    const error = await expectCode(
      instance.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      /DisabledException/,
    );
    assert.equal(outcomeOf(error), 'FAILED_PRECONDITION');
    await expectCode(
      instance.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx()),
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
    );

    await backend.enableKey(key.keyId);
    await backend.scheduleKeyDeletion(key.keyId);
    const pending = await instance.status(ctx());
    assert.ok(!pending.healthy);
    assert.equal(pending.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    assert.match(pending.reason, /PendingDeletion/);
    await expectCode(
      instance.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      /KMSInvalidStateException/,
    );

    await backend.cancelKeyDeletion(key.keyId);
    await backend.enableKey(key.keyId);
    const back = await instance.status(ctx());
    assert.ok(back.healthy);
    assert.equal(back.keyId, healthy.keyId);
  });

  it('describes the key at the next Status once a call finds it gone, not a snapshot later', async () => {
    const key = await backend.createKey();
    // A snapshot that would stay fresh for an hour: only what a call saw can make Status look again.
    const instance = await open({ keyId: key.keyId, statusRefreshSeconds: 3_600 });
    assert.ok((await instance.status(ctx())).healthy);
    const sealed = await instance.encrypt(randomBytes(32), ctx());
    await backend.scheduleKeyDeletion(key.keyId);
    assert.ok((await instance.status(ctx())).healthy, 'the snapshot: nothing has failed yet');
    await expectCode(
      instance.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx()),
      'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
    );
    const gone = await instance.status(ctx());
    assert.ok(!gone.healthy);
    assert.equal(gone.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    assert.match(gone.reason, /PendingDeletion/);
  });

  it('takes a deadline that is not a whole millisecond away (a replicated copy gets half of what is left)', async () => {
    const key = await backend.createKey();
    const instance = await open({ keyId: key.keyId });
    // AbortSignal.timeout throws on a fractional delay; every call here once failed with that, as INTERNAL.
    const sealed = await instance.encrypt(randomBytes(32), ctx(4_999.5));
    const opened = await instance.decrypt(
      { ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' },
      ctx(2_499.25),
    );
    assert.equal(opened.length, 32);
    assert.ok((await instance.status(ctx(999.75))).healthy);
  });

  it('reports a missing key as unusable, and recovers once the alias exists', async () => {
    const alias = `alias/trousseau-missing-${randomBytes(4).toString('hex')}`;
    const instance = await open({ keyId: alias });
    const missing = await instance.status(ctx());
    assert.ok(!missing.healthy);
    assert.equal(missing.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    assert.match(missing.reason, /NotFoundException/);
    await expectCode(instance.encrypt(randomBytes(32), ctx()), 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    const key = await backend.createKey();
    await backend.createAlias(key.keyId, alias);
    const found = await instance.status(ctx());
    assert.ok(found.healthy);
    const described = await backend.admin.send(new DescribeKeyCommand({ KeyId: key.keyId }));
    assert.equal(found.keyId, instance.keyIdFor(key.arn, described.KeyMetadata?.CurrentKeyMaterialId));
    assert.ok((await instance.encrypt(randomBytes(32), ctx())).ciphertext.length > 0);
  });

  it('fails with a clear message when the secret access key is wrong, without echoing it', async (t) => {
    const accessKeyId = backend.secretEnv.TEST_AWS_ACCESS_KEY_ID ?? process.env.AWS_ACCESS_KEY_ID;
    if (accessKeyId === undefined) {
      t.skip('no access key id in the environment to pair with a wrong secret');
      return;
    }
    const wrongSecret = `wrong${randomBytes(15).toString('hex')}`;
    const key = await backend.createKey();
    const env = { TEST_AWS_ACCESS_KEY_ID: accessKeyId, TEST_AWS_SECRET_ACCESS_KEY: wrongSecret };
    const instance = await open(
      {
        keyId: key.keyId,
        credentials: {
          accessKeyId: { env: 'TEST_AWS_ACCESS_KEY_ID' },
          secretAccessKey: { env: 'TEST_AWS_SECRET_ACCESS_KEY' },
        },
      },
      contextFor(backend, env),
    );
    const error = await expectCode(
      instance.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      /InvalidSignatureException.*secret access key does not belong to the access key id/,
    );
    assert.ok(!error.message.includes(wrongSecret));
    const status = await instance.status(ctx());
    assert.ok(!status.healthy);
    assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'bad credentials are not a gone key');
    assert.match(status.reason, /secret access key/);
  });

  it('fails AUTH_FAILED naming the variable when a credentials reference cannot be read', async () => {
    const key = await backend.createKey();
    const instance = await open(
      {
        keyId: key.keyId,
        credentials: { accessKeyId: { env: 'NOPE_AKID' }, secretAccessKey: { env: 'NOPE_SECRET' } },
      },
      contextFor(backend, {}),
    );
    await expectCode(instance.encrypt(randomBytes(32), ctx()), 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', /NOPE_/);
  });

  it('follows an alias to a new key (new key id) and still decrypts what the old key made', async () => {
    const first = await backend.createKey();
    const second = await backend.createKey();
    const alias = await backend.createAlias(first.keyId);
    const instance = await open({ keyId: alias });
    const before = await instance.status(ctx());
    assert.ok(before.healthy);
    const plaintext = randomBytes(32);
    const old = await instance.encrypt(plaintext, ctx());
    await backend.updateAlias(alias, second.keyId);
    const fresh = await instance.encrypt(plaintext, ctx());
    assert.equal(fresh.keyRef, second.arn);
    const afterMove = await instance.status(ctx());
    assert.ok(afterMove.healthy);
    assert.notEqual(afterMove.keyId, before.keyId);
    assert.equal(afterMove.keyId, fresh.keyId, 'Status and Encrypt agree on the new key id');
    await assertAllOpen(instance, [old, fresh], plaintext);
  });

  it(
    'changes the key id when AWS rotates the key material (new CurrentKeyMaterialId); old ciphertexts still decrypt',
    emulatorOnly,
    async () => {
      const emulator = backend.emulator!;
      const key = await backend.createKey();
      const instance = await open({ keyId: key.arn, encryptionContext: { cluster: 'rotation' } });
      const plaintext = randomBytes(32);
      // Encrypt before any Status: the provider describes the key itself, so both agree from the start.
      const old = await instance.encrypt(plaintext, ctx());
      const before = await instance.status(ctx());
      assert.ok(before.healthy);
      assert.equal(old.keyId, before.keyId, 'Encrypt and Status agree before rotation');
      const material = emulator.describeKey(key.keyId).CurrentKeyMaterialId;
      assert.ok(material !== undefined);
      assert.notEqual(before.keyId, instance.keyIdFor(key.arn), 'the key material is part of the key id');

      emulator.rotateKeyMaterial(key.keyId);
      assert.notEqual(emulator.describeKey(key.keyId).CurrentKeyMaterialId, material);
      const after = await instance.status(ctx());
      assert.ok(after.healthy);
      assert.notEqual(after.keyId, before.keyId, 'the rotation reaches kube-apiserver as a new key id');
      assert.ok(after.keyId?.startsWith(`awskms:${key.arn}:`));
      assert.equal((await instance.status(ctx())).keyId, after.keyId, 'no flip-flop: the new id stays');
      const fresh = await instance.encrypt(plaintext, ctx());
      assert.equal(fresh.keyId, after.keyId, 'Encrypt reports the key id Status reports');
      assert.notDeepEqual(
        Buffer.from(fresh.ciphertext.subarray(0, 21)),
        Buffer.from(old.ciphertext.subarray(0, 21)),
        'the new ciphertext is made with the new key material',
      );
      await assertAllOpen(instance, [old, fresh], plaintext);
    },
  );

  it(
    'keeps the earlier key id format for a key without CurrentKeyMaterialId (custom key store)',
    emulatorOnly,
    async () => {
      const emulator = backend.emulator!;
      const key = emulator.createKey({ origin: 'AWS_CLOUDHSM' });
      assert.equal(emulator.describeKey(key.keyId).CurrentKeyMaterialId, undefined);
      const instance = await open({ keyId: key.keyId, encryptionContext: { b: '2', a: '1' } });
      const status = await instance.status(ctx());
      assert.ok(status.healthy);
      // The key id of earlier releases: the ARN and a digest of the ARN and the sorted encryption context.
      const earlier = `awskms:${key.arn}:${keyIdDigest([
        key.arn,
        JSON.stringify([
          ['a', '1'],
          ['b', '2'],
        ]),
      ])}`;
      assert.equal(status.keyId, earlier);
      const sealed = await instance.encrypt(randomBytes(32), ctx());
      assert.equal(sealed.keyId, earlier);
    },
  );

  it(
    'answers Status from the DescribeKey cache inside statusRefreshSeconds, and re-checks after a failure',
    emulatorOnly,
    async () => {
      const emulator = backend.emulator!;
      const key = await backend.createKey();
      const instance = await open({ keyId: key.keyId, statusRefreshSeconds: 30, maxAttempts: 1 });
      emulator.clearRequests();
      assert.ok((await instance.status(ctx())).healthy);
      assert.ok((await instance.status(ctx())).healthy);
      assert.equal(emulator.requests.filter((r) => r.target === 'DescribeKey').length, 1);
      emulator.faults.failNext(1, 'internal');
      await expectCode(instance.encrypt(randomBytes(32), ctx()), 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE');
      assert.ok((await instance.status(ctx())).healthy);
      assert.equal(
        emulator.requests.filter((r) => r.target === 'DescribeKey').length,
        2,
        'a failed call forces a fresh check',
      );
    },
  );

  it('retries throttling and 5xx inside the attempts budget and no further', emulatorOnly, async () => {
    const emulator = backend.emulator!;
    const key = await backend.createKey();
    const metrics = new RecordingMetrics();
    const instance = await open(
      { keyId: key.keyId, maxAttempts: 3 },
      contextFor(backend, backend.secretEnv, metrics),
    );
    const encrypts = (): number => emulator.requests.filter((r) => r.target === 'Encrypt').length;

    emulator.clearRequests();
    emulator.faults.failNext(1, 'throttle');
    emulator.faults.failNext(1, 'internal');
    const sealed = await instance.encrypt(randomBytes(32), ctx());
    assert.ok(sealed.ciphertext.length > 0);
    assert.equal(encrypts(), 3, 'one throttled, one 500, one success');
    assert.equal(metrics.count('awskms_retries_total', { provider: 'aws-test', operation: 'Encrypt' }), 2);

    emulator.clearRequests();
    emulator.faults.failNext(10, 'unavailable');
    const error = await expectCode(
      instance.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      /after 3 attempts/,
    );
    assert.equal(outcomeOf(error), 'UNAVAILABLE');
    assert.equal(encrypts(), 3, 'maxAttempts bounds the retries');
    emulator.faults.reset();

    emulator.clearRequests();
    emulator.faults.failNext(10, 'throttle');
    const limited = await open({ keyId: key.keyId, maxAttempts: 2 });
    await expectCode(
      limited.encrypt(randomBytes(32), ctx()),
      'TROUSSEAU_ERR_PROVIDER_THROTTLED',
      /ThrottlingException/,
    );
    assert.equal(encrypts(), 2);
    emulator.faults.reset();
  });

  it(
    'never lets a retry chain outlive the deadline: DEADLINE_EXCEEDED and no request after it',
    emulatorOnly,
    async () => {
      const emulator = backend.emulator!;
      const key = await backend.createKey();
      const instance = await open({ keyId: key.keyId, maxAttempts: 10, requestTimeoutMs: 10_000 });
      await instance.status(ctx());
      emulator.clearRequests();
      emulator.faults.failNext(1_000, 'internal');
      emulator.faults.latencyMs = 60;
      const request = ctx(400);
      await expectCode(instance.encrypt(randomBytes(32), request), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
      const sent = emulator.requests.length;
      assert.ok(sent >= 1 && sent < 10, `the deadline cut the chain short (${sent} attempts)`);
      // Let any backoff timer of the SDK fire: nothing more may reach the backend.
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.equal(emulator.requests.length, sent, 'no attempt after the deadline');
      assert.ok(
        emulator.requests.every((r) => r.at <= request.deadline),
        'every attempt started before the deadline',
      );
      emulator.faults.reset();

      // A backend slower than the deadline: the HTTP request is aborted at the deadline.
      emulator.faults.latencyMs = 1_000;
      await expectCode(instance.encrypt(randomBytes(32), ctx(200)), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
      emulator.faults.reset();
    },
  );

  it(
    'survives an outage and recovers without a restart, keeping the last good key id',
    emulatorOnly,
    async () => {
      const emulator = backend.emulator!;
      const key = await backend.createKey();
      const instance = await open({ keyId: key.keyId, maxAttempts: 2 });
      const before = await instance.status(ctx());
      assert.ok(before.healthy);
      const plaintext = randomBytes(32);
      const sealed = await instance.encrypt(plaintext, ctx());

      emulator.faults.dropConnections = true;
      const error = await expectCode(
        instance.encrypt(randomBytes(32), ctx()),
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
        /unreachable/,
      );
      assert.equal(outcomeOf(error), 'UNAVAILABLE');
      await expectCode(
        instance.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx()),
        'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      );
      const down = await instance.status(ctx());
      assert.ok(!down.healthy);
      assert.equal(down.keyId, before.keyId);
      assert.equal(down.code, 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'an outage is not a gone key');

      emulator.faults.dropConnections = false;
      const up = await instance.status(ctx());
      assert.ok(up.healthy);
      assert.equal(up.keyId, before.keyId);
      const opened = await instance.decrypt(
        { ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' },
        ctx(),
      );
      assert.deepEqual(Buffer.from(opened), plaintext);
    },
  );

  it('honours a request that is already cancelled without calling AWS', emulatorOnly, async () => {
    const emulator = backend.emulator!;
    const key = await backend.createKey();
    const instance = await open({ keyId: key.keyId });
    emulator.clearRequests();
    await expectCode(instance.encrypt(randomBytes(32), ctx(0)), 'TROUSSEAU_ERR_DEADLINE_EXCEEDED');
    assert.equal(emulator.requests.length, 0);
  });
});

describe('awskms config', () => {
  const parse = (config: Record<string, unknown>) => awsKmsOptionsSchema.safeParse(config);

  it('accepts every key form and fills the defaults', () => {
    for (const keyId of [
      '1234abcd-12ab-34cd-56ef-1234567890ab',
      'mrk-1234abcd12ab34cd56ef1234567890ab',
      'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      'alias/kube-secrets',
      'arn:aws:kms:eu-west-1:111122223333:alias/kube-secrets',
    ]) {
      const result = parse({ keyId });
      assert.ok(result.success, `${keyId}: ${JSON.stringify(result.error?.issues)}`);
      assert.equal(result.data.maxAttempts, 3);
      assert.equal(result.data.statusRefreshSeconds, 30);
    }
  });

  it('rejects unknown keys, bad key ids, a region that contradicts the ARN, and an inline secret', () => {
    assert.ok(!parse({ keyId: 'alias/x', regoin: 'eu-west-1' }).success);
    assert.ok(!parse({ keyId: 'my key' }).success);
    const mismatch = parse({ keyId: 'arn:aws:kms:eu-west-1:111122223333:alias/x', region: 'us-east-1' });
    assert.ok(!mismatch.success);
    assert.deepEqual(mismatch.error.issues[0]?.path, ['region']);
    assert.ok(
      !parse({ keyId: 'alias/x', credentials: { accessKeyId: 'AKIA', secretAccessKey: 'inline' } }).success,
    );
    assert.ok(!parse({ keyId: 'alias/x', externalId: 'abc' }).success, 'externalId needs roleArn');
  });

  it('reads the example config, examples/configs/awskms.yaml', async () => {
    const loaded = await loadConfigFile(
      fileURLToPath(new URL('../../../../examples/configs/awskms.yaml', import.meta.url)),
    );
    const entry = loaded.config.providers[0];
    assert.equal(entry?.type, 'awskms');
    const options = awsKmsOptionsSchema.parse(entry.config);
    assert.equal(options.region, 'eu-west-1');
    assert.deepEqual(options.encryptionContext, { cluster: 'prod-eu-1' });
  });

  it('takes the region from a key ARN', async () => {
    const options = awsKmsOptionsSchema.parse({ keyId: 'arn:aws:kms:ap-south-1:111122223333:alias/x' });
    const made = new AwsKmsProvider(options, {
      instanceName: 'aws-test',
      logger: silentLogger,
      metrics: new RecordingMetrics(),
      clock: systemClock,
      configDir: process.cwd(),
      secrets: createSecretReader(process.cwd(), {}),
    });
    assert.equal(made.region, 'ap-south-1');
    await made.close();
    await expectCode(made.encrypt(randomBytes(32), testRequestContext()), 'TROUSSEAU_ERR_SHUTTING_DOWN');
  });
});
