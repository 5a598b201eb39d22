import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  type KMSClientConfig,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-kms';
import type { FinalizeHandler, FinalizeHandlerArguments, FinalizeHandlerOutput } from '@smithy/types';
import { startAwsKmsEmulator, verifySigV4, type AwsKmsEmulator } from '../../src/awskms/index.js';

interface SdkError {
  name: string;
  message: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

function sdkError(expectedName: string, status?: number) {
  return (error: unknown): boolean => {
    const failure = error as SdkError;
    assert.equal(
      failure.name,
      expectedName,
      `expected ${expectedName}, got ${failure.name}: ${failure.message}`,
    );
    if (status !== undefined) assert.equal(failure.$metadata?.httpStatusCode, status);
    return true;
  };
}

describe('AWS KMS emulator (real @aws-sdk/client-kms over HTTP)', () => {
  let emulator: AwsKmsEmulator;
  let client: KMSClient;
  const clients: KMSClient[] = [];

  const clientFor = (overrides: Partial<KMSClientConfig> = {}): KMSClient => {
    const credential = emulator.credentials[0];
    assert.ok(credential);
    const made = new KMSClient({
      region: emulator.region,
      endpoint: emulator.url,
      credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey },
      maxAttempts: 1,
      ...overrides,
    });
    clients.push(made);
    return made;
  };

  before(async () => {
    emulator = await startAwsKmsEmulator();
    client = clientFor();
  });
  after(async () => {
    for (const made of clients) made.destroy();
    await emulator.close();
  });

  it('creates keys and aliases over the wire and addresses a key by id, ARN, alias and alias ARN', async () => {
    const created = await client.send(new CreateKeyCommand({ Description: 'wire' }));
    const metadata = created.KeyMetadata;
    assert.ok(metadata?.KeyId !== undefined && metadata.Arn !== undefined);
    assert.equal(metadata.KeyState, 'Enabled');
    assert.equal(metadata.Arn, `arn:aws:kms:us-east-1:111122223333:key/${metadata.KeyId}`);
    await client.send(new CreateAliasCommand({ AliasName: 'alias/wire', TargetKeyId: metadata.KeyId }));
    const plaintext = randomBytes(32);
    for (const keyId of [
      metadata.KeyId,
      metadata.Arn,
      'alias/wire',
      'arn:aws:kms:us-east-1:111122223333:alias/wire',
    ]) {
      const encrypted = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
      assert.equal(encrypted.KeyId, metadata.Arn, 'Encrypt answers the key ARN');
      assert.equal(encrypted.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT');
      const decrypted = await client.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob }));
      assert.equal(decrypted.KeyId, metadata.Arn);
      assert.deepEqual(Buffer.from(decrypted.Plaintext ?? new Uint8Array()), plaintext);
    }
    await assert.rejects(
      client.send(new CreateAliasCommand({ AliasName: 'alias/wire', TargetKeyId: metadata.KeyId })),
      sdkError('AlreadyExistsException', 400),
    );
  });

  it('answers NotFoundException (400) for an unknown key or alias', async () => {
    await assert.rejects(
      client.send(new DescribeKeyCommand({ KeyId: '00000000-0000-4000-8000-000000000000' })),
      sdkError('NotFoundException', 400),
    );
    await assert.rejects(
      client.send(new EncryptCommand({ KeyId: 'alias/none', Plaintext: randomBytes(8) })),
      (error: unknown) =>
        sdkError('NotFoundException', 400)(error) && /alias\/none/.test((error as Error).message),
    );
  });

  it('binds the encryption context and the key into the blob', async () => {
    const key = emulator.createKey();
    const other = emulator.createKey();
    const plaintext = randomBytes(32);
    const context = { cluster: 'a', purpose: 'test' };
    const encrypted = await client.send(
      new EncryptCommand({ KeyId: key.keyId, Plaintext: plaintext, EncryptionContext: context }),
    );
    const blob = encrypted.CiphertextBlob;
    assert.ok(blob);
    const opened = await client.send(
      new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { purpose: 'test', cluster: 'a' } }),
    );
    assert.deepEqual(Buffer.from(opened.Plaintext ?? new Uint8Array()), plaintext);
    const wrongContexts: (Record<string, string> | undefined)[] = [
      undefined,
      { cluster: 'b', purpose: 'test' },
      { cluster: 'a' },
    ];
    for (const wrong of wrongContexts) {
      await assert.rejects(
        client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: wrong })),
        sdkError('InvalidCiphertextException', 400),
      );
    }
    for (let index = 0; index < blob.length; index += 7) {
      const flipped = Buffer.from(blob);
      flipped[index] = (flipped[index] ?? 0) ^ 0x10;
      await assert.rejects(
        client.send(new DecryptCommand({ CiphertextBlob: flipped, EncryptionContext: context })),
        sdkError('InvalidCiphertextException', 400),
        `bit flipped at byte ${index}`,
      );
    }
    await assert.rejects(
      client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: other.arn })),
      sdkError('IncorrectKeyException', 400),
    );
  });

  it('generates data keys whose ciphertext decrypts to the returned plaintext', async () => {
    const key = emulator.createKey();
    const generated = await client.send(new GenerateDataKeyCommand({ KeyId: key.arn, KeySpec: 'AES_256' }));
    assert.equal(generated.Plaintext?.length, 32);
    assert.equal(generated.KeyId, key.arn);
    const opened = await client.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob }));
    assert.deepEqual(
      Buffer.from(opened.Plaintext ?? new Uint8Array()),
      Buffer.from(generated.Plaintext ?? []),
    );
    await assert.rejects(
      client.send(new GenerateDataKeyCommand({ KeyId: key.arn })),
      sdkError('ValidationException', 400),
    );
  });

  it('follows the key states Enabled, Disabled and PendingDeletion as AWS does', async () => {
    const key = emulator.createKey();
    const blob = (await client.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: randomBytes(32) })))
      .CiphertextBlob;
    await client.send(new DisableKeyCommand({ KeyId: key.keyId }));
    const disabled = await client.send(new DescribeKeyCommand({ KeyId: key.arn }));
    assert.equal(disabled.KeyMetadata?.KeyState, 'Disabled');
    assert.equal(disabled.KeyMetadata?.Enabled, false);
    await assert.rejects(
      client.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: randomBytes(8) })),
      sdkError('DisabledException', 400),
    );
    await assert.rejects(
      client.send(new DecryptCommand({ CiphertextBlob: blob })),
      sdkError('DisabledException', 400),
    );
    await client.send(new EnableKeyCommand({ KeyId: key.keyId }));
    await client.send(new DecryptCommand({ CiphertextBlob: blob }));

    const scheduled = await client.send(
      new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: 7 }),
    );
    assert.equal(scheduled.KeyState, 'PendingDeletion');
    assert.equal(scheduled.KeyId, key.arn);
    assert.ok(scheduled.DeletionDate instanceof Date && scheduled.DeletionDate.getTime() > Date.now());
    const pending = await client.send(new DescribeKeyCommand({ KeyId: key.keyId }));
    assert.equal(pending.KeyMetadata?.KeyState, 'PendingDeletion');
    await assert.rejects(
      client.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: randomBytes(8) })),
      sdkError('KMSInvalidStateException', 400),
    );
    await assert.rejects(
      client.send(new EnableKeyCommand({ KeyId: key.keyId })),
      sdkError('KMSInvalidStateException', 400),
    );
    await client.send(new CancelKeyDeletionCommand({ KeyId: key.keyId }));
    assert.equal(emulator.describeKey(key.keyId).KeyState, 'Disabled');
  });

  it('rotates key material under the same ARN with a new CurrentKeyMaterialId; older blobs still decrypt', async () => {
    const key = emulator.createKey();
    const plaintext = randomBytes(32);
    const materialId = async (): Promise<string | undefined> =>
      (await client.send(new DescribeKeyCommand({ KeyId: key.keyId }))).KeyMetadata?.CurrentKeyMaterialId;
    const first = await materialId();
    assert.match(first ?? '', /^[a-f0-9]{64}$/, 'AWS key material ids are 64 lowercase hex characters');
    const before = await client.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: plaintext }));
    emulator.rotateKeyMaterial(key.keyId);
    const second = await materialId();
    assert.match(second ?? '', /^[a-f0-9]{64}$/);
    assert.notEqual(second, first, 'rotation makes new key material');
    const after = await client.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: plaintext }));
    assert.equal(after.KeyId, before.KeyId);
    await client.send(new RotateKeyOnDemandCommand({ KeyId: key.keyId }));
    const third = await materialId();
    assert.ok(third !== first && third !== second, 'on-demand rotation over the wire makes new material too');
    for (const [blob, expected] of [
      [before.CiphertextBlob, first],
      [after.CiphertextBlob, second],
    ] as const) {
      const opened = await client.send(new DecryptCommand({ CiphertextBlob: blob }));
      assert.deepEqual(Buffer.from(opened.Plaintext ?? new Uint8Array()), plaintext);
      assert.equal(opened.KeyMaterialId, expected, 'Decrypt names the key material that decrypted');
    }
  });

  it('reports no CurrentKeyMaterialId for a key in a CloudHSM key store, which cannot rotate', async () => {
    const key = emulator.createKey({ origin: 'AWS_CLOUDHSM' });
    const described = await client.send(new DescribeKeyCommand({ KeyId: key.arn }));
    assert.equal(described.KeyMetadata?.Origin, 'AWS_CLOUDHSM');
    assert.match(described.KeyMetadata?.CustomKeyStoreId ?? '', /^cks-[a-f0-9]{17}$/);
    assert.equal(described.KeyMetadata?.CurrentKeyMaterialId, undefined);
    await assert.rejects(
      client.send(new RotateKeyOnDemandCommand({ KeyId: key.keyId })),
      sdkError('UnsupportedOperationException', 400),
    );
  });

  it('refuses a wrong secret key with InvalidSignatureException and an unknown access key with UnrecognizedClientException', async () => {
    const credential = emulator.credentials[0];
    assert.ok(credential);
    const wrongSecret = clientFor({
      credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: `${credential.secretAccessKey}x` },
    });
    await assert.rejects(
      wrongSecret.send(new DescribeKeyCommand({ KeyId: emulator.createKey().keyId })),
      (error: unknown) =>
        sdkError('InvalidSignatureException', 400)(error) &&
        /Check your AWS Secret Access Key/.test((error as Error).message),
    );
    const unknown = clientFor({ credentials: { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'nope' } });
    await assert.rejects(
      unknown.send(new DescribeKeyCommand({ KeyId: 'alias/x' })),
      sdkError('UnrecognizedClientException', 400),
    );
    const otherRegion = clientFor({ region: 'eu-west-1' });
    await assert.rejects(
      otherRegion.send(new DescribeKeyCommand({ KeyId: 'alias/x' })),
      (error: unknown) =>
        sdkError('InvalidSignatureException', 400)(error) && /eu-west-1/.test((error as Error).message),
    );
  });

  it('detects a body changed after signing', async () => {
    const tampering = clientFor();
    const tamper =
      (next: FinalizeHandler<ServiceInputTypes, ServiceOutputTypes>) =>
      async (
        args: FinalizeHandlerArguments<ServiceInputTypes>,
      ): Promise<FinalizeHandlerOutput<ServiceOutputTypes>> => {
        // Same length, one byte changed: the HTTP framing stays valid, only the signed payload differs.
        const request = args.request as { body?: unknown };
        assert.ok(request.body instanceof Uint8Array);
        const body = Buffer.from(request.body);
        body[body.length - 3] = body[body.length - 3] === 0x30 ? 0x31 : 0x30;
        request.body = body;
        return next(args);
      };
    tampering.middlewareStack.addRelativeTo(tamper, {
      relation: 'after',
      toMiddleware: 'httpSigningMiddleware',
      name: 'tamper',
    });
    await assert.rejects(
      tampering.send(new DescribeKeyCommand({ KeyId: emulator.createKey().keyId })),
      sdkError('InvalidSignatureException', 400),
    );
  });

  it('refuses a request signed more than 5 minutes off ("Signature expired"); the SDK corrects its clock from the Date header', async () => {
    const key = emulator.createKey();
    const skewed = clientFor({ systemClockOffset: -10 * 60 * 1000 });
    await assert.rejects(
      skewed.send(new DescribeKeyCommand({ KeyId: key.keyId })),
      (error: unknown) =>
        sdkError('InvalidSignatureException', 400)(error) &&
        /^Signature expired: /.test((error as Error).message),
    );
    const future = clientFor({ systemClockOffset: 10 * 60 * 1000 });
    await assert.rejects(
      future.send(new DescribeKeyCommand({ KeyId: key.keyId })),
      (error: unknown) =>
        sdkError('InvalidSignatureException', 400)(error) &&
        /^Signature not yet current: /.test((error as Error).message),
    );
    const retrying = clientFor({ systemClockOffset: -10 * 60 * 1000, maxAttempts: 2 });
    const described = await retrying.send(new DescribeKeyCommand({ KeyId: key.keyId }));
    assert.equal(described.KeyMetadata?.Arn, key.arn);
    assert.equal(described.$metadata.attempts, 2);
  });

  it('answers unsigned and malformed requests with AWS error shapes', async () => {
    const unsigned = await fetch(emulator.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.DescribeKey' },
      body: '{"KeyId":"alias/x"}',
    });
    assert.equal(unsigned.status, 400);
    assert.equal(unsigned.headers.get('content-type'), 'application/x-amz-json-1.1');
    assert.deepEqual(await unsigned.json(), {
      __type: 'MissingAuthenticationTokenException',
      message: 'Missing Authentication Token',
    });
    const incomplete = await fetch(emulator.url, {
      method: 'POST',
      headers: { authorization: 'AWS4-HMAC-SHA256 Credential=x', 'x-amz-target': 'TrentService.DescribeKey' },
      body: '{}',
    });
    assert.equal(incomplete.status, 400);
    const body = (await incomplete.json()) as { __type: string; message: string };
    assert.equal(body.__type, 'IncompleteSignatureException');
    assert.ok(body.message.length > 0);
  });

  it('injects throttling, 5xx, latency and dropped connections, and logs every request', async () => {
    const key = emulator.createKey();
    emulator.clearRequests();
    emulator.faults.failNext(1, 'throttle');
    emulator.faults.failNext(1, 'internal');
    emulator.faults.failNext(1, 'unavailable');
    const describe = (): Promise<unknown> => client.send(new DescribeKeyCommand({ KeyId: key.keyId }));
    await assert.rejects(describe(), sdkError('ThrottlingException', 400));
    await assert.rejects(describe(), sdkError('KMSInternalException', 500));
    await assert.rejects(describe(), sdkError('DependencyTimeoutException', 503));
    assert.equal(emulator.faults.pending, 0);
    await describe();

    emulator.faults.dropConnections = true;
    await assert.rejects(describe(), (error: unknown) => {
      const code = (error as { code?: string }).code;
      assert.ok(
        code === 'ECONNRESET' || code === 'EPIPE',
        `expected a dropped connection, got ${String(error)}`,
      );
      return true;
    });
    emulator.faults.dropConnections = false;

    emulator.faults.latencyMs = 50;
    const startedAt = Date.now();
    await describe();
    assert.ok(Date.now() - startedAt >= 45, 'latency is added to the answer');
    emulator.faults.reset();

    assert.deepEqual(
      emulator.requests.map((record) => [record.target, record.status, record.errorType]),
      [
        ['DescribeKey', 400, 'ThrottlingException'],
        ['DescribeKey', 500, 'KMSInternalException'],
        ['DescribeKey', 503, 'DependencyTimeoutException'],
        ['DescribeKey', 200, undefined],
        ['DescribeKey', 'dropped', undefined],
        ['DescribeKey', 200, undefined],
      ],
    );
  });

  it('lets the SDK retry injected throttling and 5xx up to maxAttempts', async () => {
    const key = emulator.createKey();
    const retrying = clientFor({ maxAttempts: 3 });
    emulator.clearRequests();
    emulator.faults.failNext(1, 'internal');
    emulator.faults.failNext(1, 'unavailable');
    const described = await retrying.send(new DescribeKeyCommand({ KeyId: key.keyId }));
    assert.equal(described.$metadata.attempts, 3);
    assert.equal(emulator.requests.length, 3);
    emulator.faults.failNext(5, 'internal');
    await assert.rejects(
      retrying.send(new DescribeKeyCommand({ KeyId: key.keyId })),
      sdkError('KMSInternalException', 500),
    );
    assert.equal(emulator.requests.length, 6);
    emulator.faults.reset();
  });
});

describe('AWS KMS emulator options', () => {
  it('starts with the given region, account, credentials and latency', async () => {
    const credentials = [{ accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' }];
    const emulator = await startAwsKmsEmulator({
      region: 'eu-west-3',
      accountId: '444455556666',
      credentials,
      latencyMs: 20,
    });
    const client = new KMSClient({
      region: 'eu-west-3',
      endpoint: emulator.url,
      credentials: credentials[0]!,
    });
    try {
      assert.match(emulator.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(emulator.faults.latencyMs, 20);
      const key = emulator.createKey();
      assert.equal(key.arn, `arn:aws:kms:eu-west-3:444455556666:key/${key.keyId}`);
      const described = await client.send(new DescribeKeyCommand({ KeyId: key.arn }));
      assert.equal(described.KeyMetadata?.AWSAccountId, '444455556666');
    } finally {
      client.destroy();
      await emulator.close();
      await emulator.close();
    }
  });
});

describe('SigV4 verifier', () => {
  // The "get-vanilla" case of the AWS Signature Version 4 test suite.
  const credentials = new Map([
    [
      'AKIDEXAMPLE',
      { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    ],
  ]);
  const request = (signature: string) => ({
    method: 'GET',
    url: '/',
    rawHeaders: [
      'Host',
      'example.amazonaws.com',
      'X-Amz-Date',
      '20150830T123600Z',
      'Authorization',
      `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    ],
    body: Buffer.alloc(0),
  });
  const options = {
    region: 'us-east-1',
    service: 'service',
    credentials,
    now: Date.UTC(2015, 7, 30, 12, 36),
  };

  it('accepts the published test vector and refuses any other signature', () => {
    assert.equal(
      verifySigV4(request('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'), options),
      'AKIDEXAMPLE',
    );
    assert.throws(
      () => verifySigV4(request('5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf32'), options),
      (error: unknown) => (error as { type?: string }).type === 'InvalidSignatureException',
    );
  });
});
