import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  KeyStore,
  type EncryptionContext,
  type KeyMetadataJson,
  type KeyOrigin,
  type KeyRecord,
} from './key-store.js';
import { KmsError } from './kms-error.js';
import { verifySigV4, type AwsCredential } from './sigv4.js';
import { readBody } from '../read-body.js';
import { RequestHold } from '../request-hold.js';

export type { AwsCredential } from './sigv4.js';
export type { KeyMetadataJson, KeyOrigin, KeyState } from './key-store.js';

/** Faults the emulator can inject into the next requests. */
export type AwsKmsFaultKind =
  /** 400 ThrottlingException (the SDK retries it with a throttling backoff). */
  | 'throttle'
  /** 500 KMSInternalException. */
  | 'internal'
  /** 503 DependencyTimeoutException. */
  | 'unavailable'
  /** The connection is destroyed without an answer (the SDK sees ECONNRESET / socket hang up). */
  | 'drop';

export interface AwsKmsFaults {
  /** Delay added before every answer, in milliseconds. */
  latencyMs: number;
  /** While true, every request's connection is destroyed without an answer (an outage). */
  dropConnections: boolean;
  /** The next `count` requests (after any already queued) fail with `kind`, whatever they ask. */
  failNext(count: number, kind: AwsKmsFaultKind): void;
  /**
   * While true, requests arrive (and are logged and counted) but get no answer, as on a hung server;
   * turning it off lets them go on, through whatever faults are set by then.
   */
  holdRequests: boolean;
  /** How many queued failures are left. */
  readonly pending: number;
  /** Clears every fault: no latency, no drops, no held requests, no queued failures. */
  reset(): void;
}

/** One request as the emulator saw it. */
export interface AwsKmsRequestRecord {
  /** The operation, from `x-amz-target` without the `TrentService.` prefix (`''` when absent). */
  readonly target: string;
  /** Epoch ms of arrival. */
  readonly at: number;
  /** The HTTP status answered, or `'dropped'`; undefined while in flight. */
  status?: number | 'dropped';
  /** The `__type` of an error answer. */
  errorType?: string;
}

export interface AwsKmsEmulatorOptions {
  /** Default `us-east-1`. Requests signed for another region are refused as AWS does. */
  readonly region?: string;
  /** Default `111122223333`. */
  readonly accountId?: string;
  /** The access keys accepted. Default: one generated pair, readable from `emulator.credentials`. */
  readonly credentials?: readonly AwsCredential[];
  /** Interface to listen on; default 127.0.0.1 (port is always ephemeral unless given). */
  readonly host?: string;
  readonly port?: number;
  /** Initial `faults.latencyMs`: delay before every answer (benchmarks use it to model a remote KMS). */
  readonly latencyMs?: number;
}

export interface AwsKmsEmulator {
  /** Base URL to give the SDK as `endpoint`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly region: string;
  readonly accountId: string;
  /** The access keys the emulator accepts. */
  readonly credentials: readonly AwsCredential[];
  readonly faults: AwsKmsFaults;
  /** Every request received, oldest first (faulted and dropped ones included). */
  readonly requests: readonly AwsKmsRequestRecord[];
  /** Requests received so far, counted on arrival (held and faulted ones included); never reset. */
  readonly received: number;
  clearRequests(): void;
  /**
   * Creates a symmetric encryption key (Enabled). `origin: 'AWS_CLOUDHSM'` makes a key as if in a CloudHSM
   * custom key store: DescribeKey reports no CurrentKeyMaterialId and it cannot rotate.
   */
  createKey(options?: { description?: string; origin?: KeyOrigin }): { keyId: string; arn: string };
  /** Names a key: `alias` must start with `alias/`; `keyId` is a key id or key ARN. */
  createAlias(alias: string, keyId: string): void;
  /** Points an existing alias at another key. */
  updateAlias(alias: string, keyId: string): void;
  deleteAlias(alias: string): void;
  /** Metadata as DescribeKey answers it. Accepts any key identifier form. */
  describeKey(keyId: string): KeyMetadataJson;
  disableKey(keyId: string): void;
  enableKey(keyId: string): void;
  scheduleKeyDeletion(keyId: string, pendingWindowInDays?: number): void;
  /** Leaves the key Disabled, as AWS does. */
  cancelKeyDeletion(keyId: string): void;
  /**
   * Like AWS automatic or on-demand rotation: same key id and ARN, new backing material and a new
   * CurrentKeyMaterialId in DescribeKey; old blobs still open.
   */
  rotateKeyMaterial(keyId: string): void;
  /** Stops listening and drops every connection. Idempotent. */
  close(): Promise<void>;
}

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'TrentService.';
const MAX_BODY_BYTES = 1024 * 1024;

class Faults implements AwsKmsFaults {
  latencyMs = 0;
  dropConnections = false;
  readonly hold = new RequestHold();
  readonly #queue: AwsKmsFaultKind[] = [];

  get holdRequests(): boolean {
    return this.hold.held;
  }

  set holdRequests(value: boolean) {
    this.hold.held = value;
  }

  failNext(count: number, kind: AwsKmsFaultKind): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer');
    for (let index = 0; index < count; index += 1) this.#queue.push(kind);
  }

  get pending(): number {
    return this.#queue.length;
  }

  take(): AwsKmsFaultKind | undefined {
    return this.#queue.shift();
  }

  reset(): void {
    this.latencyMs = 0;
    this.dropConnections = false;
    this.hold.held = false;
    this.#queue.length = 0;
  }
}

type Json = Record<string, unknown>;

function field(input: Json, name: string, path: string): unknown {
  const value = input[name];
  if (value === undefined || value === null) {
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value null at '${path}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return value;
}

function stringField(input: Json, name: string, path: string): string {
  const value = field(input, name, path);
  if (typeof value !== 'string') throw new KmsError('SerializationException', `${name} must be a string`);
  return value;
}

function optionalString(input: Json, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new KmsError('SerializationException', `${name} must be a string`);
  return value;
}

function blobField(input: Json, name: string, path: string, maxBytes: number): Buffer {
  const value = stringField(input, name, path);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new KmsError('SerializationException', `Value for ${name} is not valid base64 data.`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length < 1 || bytes.length > maxBytes) {
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value at '${path}' failed to satisfy constraint: Member must have length between 1 and ${maxBytes}`,
    );
  }
  return bytes;
}

function contextField(input: Json): EncryptionContext | undefined {
  const value = input.EncryptionContext;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new KmsError('SerializationException', 'EncryptionContext must be a map of strings');
  }
  const context: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value as Json)) {
    if (typeof entry !== 'string') {
      throw new KmsError('SerializationException', 'EncryptionContext must be a map of strings');
    }
    context[key] = entry;
  }
  return context;
}

function checkAlgorithm(input: Json): void {
  const algorithm = optionalString(input, 'EncryptionAlgorithm');
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError(
      'InvalidKeyUsageException',
      `The encryption algorithm ${algorithm} is not compatible with the type of key material in the KMS key.`,
    );
  }
}

function dataKeyLength(input: Json): number {
  const spec = optionalString(input, 'KeySpec');
  const bytes = input.NumberOfBytes;
  if (spec !== undefined && bytes !== undefined && bytes !== null) {
    throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
  }
  if (spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  if (spec !== undefined) {
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value '${spec}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]`,
    );
  }
  if (typeof bytes === 'number' && Number.isInteger(bytes) && bytes >= 1 && bytes <= 1024) return bytes;
  if (bytes === undefined || bytes === null) {
    throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
  }
  throw new KmsError(
    'ValidationException',
    "1 validation error detected: Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024",
  );
}

/** The KMS operations the emulator serves: JSON in, JSON out (undefined = empty body). */
function operations(store: KeyStore): Record<string, (input: Json) => Json | undefined> {
  const withKey = (input: Json): KeyRecord => store.resolve(stringField(input, 'KeyId', 'keyId'));
  return {
    CreateKey(input) {
      const usage = optionalString(input, 'KeyUsage') ?? 'ENCRYPT_DECRYPT';
      const spec = optionalString(input, 'KeySpec') ?? optionalString(input, 'CustomerMasterKeySpec');
      if (usage !== 'ENCRYPT_DECRYPT' || (spec !== undefined && spec !== 'SYMMETRIC_DEFAULT')) {
        throw new KmsError(
          'UnsupportedOperationException',
          'This emulator creates symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT) only.',
        );
      }
      const description = optionalString(input, 'Description');
      return {
        KeyMetadata: store.metadata(store.createKey(description === undefined ? {} : { description })),
      };
    },
    DescribeKey(input) {
      return { KeyMetadata: store.metadata(withKey(input)) };
    },
    CreateAlias(input) {
      store.createAlias(
        stringField(input, 'AliasName', 'aliasName'),
        stringField(input, 'TargetKeyId', 'targetKeyId'),
      );
      return undefined;
    },
    UpdateAlias(input) {
      store.updateAlias(
        stringField(input, 'AliasName', 'aliasName'),
        stringField(input, 'TargetKeyId', 'targetKeyId'),
      );
      return undefined;
    },
    DeleteAlias(input) {
      store.deleteAlias(stringField(input, 'AliasName', 'aliasName'));
      return undefined;
    },
    EnableKey(input) {
      store.enableKey(stringField(input, 'KeyId', 'keyId'));
      return undefined;
    },
    DisableKey(input) {
      store.disableKey(stringField(input, 'KeyId', 'keyId'));
      return undefined;
    },
    ScheduleKeyDeletion(input) {
      const window = input.PendingWindowInDays;
      const record = store.scheduleKeyDeletion(
        stringField(input, 'KeyId', 'keyId'),
        typeof window === 'number' ? window : 30,
      );
      return {
        KeyId: record.arn,
        DeletionDate: (record.deletionDate ?? 0) / 1000,
        KeyState: record.state,
        PendingWindowInDays: record.pendingWindowInDays,
      };
    },
    CancelKeyDeletion(input) {
      return { KeyId: store.cancelKeyDeletion(stringField(input, 'KeyId', 'keyId')).arn };
    },
    RotateKeyOnDemand(input) {
      return { KeyId: store.rotateKeyMaterial(stringField(input, 'KeyId', 'keyId')).keyId };
    },
    Encrypt(input) {
      checkAlgorithm(input);
      const record = withKey(input);
      const plaintext = blobField(input, 'Plaintext', 'plaintext', 4096);
      const blob = store.encrypt(record, plaintext, contextField(input));
      return {
        CiphertextBlob: blob.toString('base64'),
        KeyId: record.arn,
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
    Decrypt(input) {
      checkAlgorithm(input);
      const blob = blobField(input, 'CiphertextBlob', 'ciphertextBlob', 6144);
      const { record, plaintext, materialId } = store.decrypt(
        blob,
        contextField(input),
        optionalString(input, 'KeyId'),
      );
      return {
        KeyId: record.arn,
        Plaintext: plaintext.toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        // AWS names the key material that decrypted (symmetric keys that have material ids).
        ...(materialId === undefined ? {} : { KeyMaterialId: materialId }),
      };
    },
    GenerateDataKey(input) {
      const record = withKey(input);
      const plaintext = randomBytes(dataKeyLength(input));
      const blob = store.encrypt(record, plaintext, contextField(input));
      const materialId = store.currentMaterialId(record);
      return {
        CiphertextBlob: blob.toString('base64'),
        Plaintext: plaintext.toString('base64'),
        KeyId: record.arn,
        ...(materialId === undefined ? {} : { KeyMaterialId: materialId }),
      };
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function faultError(kind: Exclude<AwsKmsFaultKind, 'drop'>): KmsError {
  switch (kind) {
    case 'throttle':
      return new KmsError(
        'ThrottlingException',
        'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.',
      );
    case 'internal':
      return new KmsError('KMSInternalException', 'An internal error occurred.', 500);
    case 'unavailable':
      return new KmsError(
        'DependencyTimeoutException',
        'The system timed out while trying to fulfill the request. The request can be retried.',
        503,
      );
  }
}

/**
 * Starts an AWS KMS emulator on 127.0.0.1 (ephemeral port) speaking the JSON 1.1 protocol, verifying the
 * SigV4 signature of every request against `credentials`.
 */
export async function startAwsKmsEmulator(options: AwsKmsEmulatorOptions = {}): Promise<AwsKmsEmulator> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '111122223333';
  const credentials: readonly AwsCredential[] = options.credentials ?? [
    {
      accessKeyId: `AKIAEMU${randomBytes(7).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
    },
  ];
  const byAccessKey = new Map(credentials.map((credential) => [credential.accessKeyId, credential]));
  const store = new KeyStore(region, accountId);
  const handlers = operations(store);
  const faults = new Faults();
  faults.latencyMs = options.latencyMs ?? 0;
  const requests: AwsKmsRequestRecord[] = [];

  const answer = (
    response: ServerResponse,
    record: AwsKmsRequestRecord,
    status: number,
    body: string,
    errorType?: string,
  ): void => {
    record.status = status;
    if (errorType !== undefined) record.errorType = errorType;
    if (response.destroyed || response.writableEnded) return;
    response.writeHead(status, {
      'content-type': JSON_CONTENT_TYPE,
      'content-length': Buffer.byteLength(body),
      'x-amzn-requestid': randomUUID(),
    });
    response.end(body);
  };

  const drop = (request: IncomingMessage, record: AwsKmsRequestRecord): void => {
    record.status = 'dropped';
    request.socket.destroy();
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const targetHeader = request.headers['x-amz-target'];
    const target = typeof targetHeader === 'string' ? targetHeader : '';
    const record: AwsKmsRequestRecord = {
      target: target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target,
      at: Date.now(),
    };
    requests.push(record);
    faults.hold.arrive();
    if (faults.hold.held) await faults.hold.pass();
    if (faults.dropConnections) {
      drop(request, record);
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(
        request,
        MAX_BODY_BYTES,
        () => new KmsError('ValidationException', 'Request body too large'),
      );
    } catch (error) {
      const kmsError =
        error instanceof KmsError ? error : new KmsError('SerializationException', 'cannot read body');
      answer(response, record, kmsError.status, kmsError.toBody(), kmsError.type);
      return;
    }
    if (faults.latencyMs > 0) await delay(faults.latencyMs);
    if (faults.dropConnections) {
      drop(request, record);
      return;
    }
    try {
      if (request.method !== 'POST') {
        throw new KmsError('UnknownOperationException', `Method ${request.method ?? ''} is not supported`);
      }
      verifySigV4(
        { method: request.method, url: request.url ?? '/', rawHeaders: request.rawHeaders, body },
        { region, service: 'kms', credentials: byAccessKey, now: Date.now() },
      );
      const fault = faults.take();
      if (fault === 'drop') {
        drop(request, record);
        return;
      }
      if (fault !== undefined) throw faultError(fault);
      const handler = target.startsWith(TARGET_PREFIX)
        ? handlers[target.slice(TARGET_PREFIX.length)]
        : undefined;
      if (handler === undefined) throw new KmsError('UnknownOperationException', '');
      let input: unknown;
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        throw new KmsError('SerializationException', 'Start of structure or map found where not expected.');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new KmsError('SerializationException', 'Start of structure or map found where not expected.');
      }
      const output = handler(input as Json);
      answer(response, record, 200, output === undefined ? '' : JSON.stringify(output));
    } catch (error) {
      const kmsError =
        error instanceof KmsError
          ? error
          : new KmsError('KMSInternalException', 'An internal error occurred.', 500);
      answer(response, record, kmsError.status, kmsError.toBody(), kmsError.type);
    }
  };

  const server: Server = createServer((request, response) => {
    void handle(request, response);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${host}:${address.port}`,
    region,
    accountId,
    credentials,
    faults,
    requests,
    get received() {
      return faults.hold.received;
    },
    clearRequests: () => {
      requests.length = 0;
    },
    createKey: (keyOptions = {}) => {
      const key = store.createKey(keyOptions);
      return { keyId: key.keyId, arn: key.arn };
    },
    createAlias: (alias, keyId) => store.createAlias(alias, keyId),
    updateAlias: (alias, keyId) => store.updateAlias(alias, keyId),
    deleteAlias: (alias) => store.deleteAlias(alias),
    describeKey: (keyId) => store.metadata(store.resolve(keyId)),
    disableKey: (keyId) => {
      store.disableKey(keyId);
    },
    enableKey: (keyId) => {
      store.enableKey(keyId);
    },
    scheduleKeyDeletion: (keyId, days) => {
      store.scheduleKeyDeletion(keyId, days);
    },
    cancelKeyDeletion: (keyId) => {
      store.cancelKeyDeletion(keyId);
    },
    rotateKeyMaterial: (keyId) => {
      store.rotateKeyMaterial(keyId);
    },
    close: () => {
      faults.hold.held = false;
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
