import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  type KeyMetadata,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import {
  abortError,
  isTrousseauError,
  keyIdDigest,
  LATENCY_BUCKETS,
  outcomeOf,
  raceAbort,
  TrousseauError,
  type Counter,
  type DecryptInput,
  type EncryptResult,
  type Gauge,
  type Histogram,
  type KeyProvider,
  type Outcome,
  type ProviderContext,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { awsErrorName, mapAwsError } from './errors.js';
import { regionOfArn, type AwsKmsOptions } from './options.js';

/** AWS KMS encrypts at most 4096 bytes with a symmetric key. */
export const MAX_PLAINTEXT_BYTES = 4096;

/**
 * A symmetric key's CiphertextBlob is this much longer than the plaintext (184 bytes for a 32-byte key):
 * AWS's own header, the key's identity, nonce and tag.
 */
const CIPHERTEXT_OVERHEAD_BYTES = 152;

/**
 * The longest key ARN: `arn:` + partition (at most `aws-us-gov`) + `:kms:` + region + `:` + account (12)
 * + `:key/` + key id (a 36-character UUID or `mrk-` and 32 hex), with room for a 20-character region.
 */
const MAX_KEY_ARN_BYTES = 96;

/** Static credentials are re-read from their secret references this often. */
const STATIC_CREDENTIALS_TTL_MS = 10 * 60 * 1000;

const KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/;

type AwsCredentialIdentity = {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
};
type CredentialProvider = () => Promise<AwsCredentialIdentity>;

/** The instruments of one provider instance, declared when it is made. */
interface AwsKmsInstruments {
  readonly requests: Counter<'provider' | 'operation' | 'outcome'>;
  readonly duration: Histogram<'provider' | 'operation'>;
  readonly retries: Counter<'provider' | 'operation'>;
  readonly errors: Counter<'provider' | 'operation' | 'error'>;
  readonly keyUsable: Gauge<'provider'>;
}

function declareInstruments(context: ProviderContext): AwsKmsInstruments {
  const { metrics } = context;
  return {
    requests: metrics.counter({
      name: 'awskms_requests_total',
      help: 'AWS KMS calls by provider instance, operation and outcome (gRPC status name)',
      labelNames: ['provider', 'operation', 'outcome'],
    }),
    duration: metrics.histogram({
      name: 'awskms_request_duration_seconds',
      help: 'AWS KMS call latency, SDK retries included, by provider instance and operation',
      labelNames: ['provider', 'operation'],
      buckets: LATENCY_BUCKETS,
    }),
    retries: metrics.counter({
      name: 'awskms_retries_total',
      help: 'Retries the AWS SDK made, by provider instance and operation',
      labelNames: ['provider', 'operation'],
    }),
    errors: metrics.counter({
      name: 'awskms_errors_total',
      help: 'AWS KMS errors by provider instance, operation and AWS error name',
      labelNames: ['provider', 'operation', 'error'],
    }),
    keyUsable: metrics.gauge({
      name: 'awskms_key_usable',
      help: '1 when the last DescribeKey found the key Enabled, 0 when it found it unusable',
      labelNames: ['provider'],
    }),
  };
}

interface KeySnapshot {
  readonly arn: string;
  /** DescribeKey's CurrentKeyMaterialId, when AWS reports one. */
  readonly keyMaterialId: string | undefined;
  readonly keyId: string;
  readonly checkedAt: number;
}

/**
 * AWS KMS as a key provider: Encrypt/Decrypt with a symmetric KMS key, a fixed encryption context bound to
 * every ciphertext, and the key ARN (from DescribeKey) as the base of the key id.
 */
export class AwsKmsProvider implements KeyProvider {
  readonly capabilities = {
    maxPlaintextBytes: MAX_PLAINTEXT_BYTES,
    batching: false,
    maxCiphertextBytes: (plaintextBytes: number) => plaintextBytes + CIPHERTEXT_OVERHEAD_BYTES,
    // The key reference is the ARN of the key that encrypted.
    maxKeyRefBytes: MAX_KEY_ARN_BYTES,
  } as const;
  readonly #options: AwsKmsOptions;
  readonly #context: ProviderContext;
  readonly #labels: { readonly provider: string };
  readonly #metrics: AwsKmsInstruments;
  readonly #encryptionContext: Record<string, string> | undefined;
  #client: KMSClient | undefined;
  #agents: { http: HttpAgent; https: HttpsAgent } | undefined;
  /** The last good DescribeKey answer. */
  #snapshot: KeySnapshot | undefined;
  /** Set when a call saw something that a fresh DescribeKey should confirm (key state, alias target). */
  #stale = false;
  #closed = false;

  constructor(options: AwsKmsOptions, context: ProviderContext) {
    this.#options = options;
    this.#context = context;
    this.#labels = { provider: context.instanceName };
    this.#metrics = declareInstruments(context);
    this.#encryptionContext =
      Object.keys(options.encryptionContext).length === 0 ? undefined : { ...options.encryptionContext };
  }

  /** The region the client uses: the configured one, else the key ARN's, else the SDK's own chain. */
  get region(): string | undefined {
    return this.#options.region ?? regionOfArn(this.#options.keyId);
  }

  /**
   * The key id for a key ARN: the ARN, and a digest of everything that makes a ciphertext (ARN, context
   * and, when AWS reports it, the current key material id). Rotation (automatic or on demand) keeps the
   * ARN but changes the key material id, so the key id changes and kube-apiserver makes a new DEK seed.
   * Without a key material id (keys in custom key stores) the digest is the one of earlier releases, so
   * those key ids do not change on upgrade.
   */
  keyIdFor(arn: string, keyMaterialId?: string): string {
    const context = Object.entries(this.#options.encryptionContext).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    const parts = [arn, JSON.stringify(context)];
    if (keyMaterialId !== undefined) parts.push(keyMaterialId);
    return `awskms:${arn}:${keyIdDigest(parts)}`;
  }

  #assertOpen(): void {
    if (this.#closed) throw new TrousseauError('TROUSSEAU_ERR_SHUTTING_DOWN', 'awskms provider is closed');
  }

  #staticCredentials(): CredentialProvider | undefined {
    const refs = this.#options.credentials;
    if (refs === undefined) return undefined;
    const secrets = this.#context.secrets;
    return async () => {
      const [accessKeyId, secretAccessKey, sessionToken] = await Promise.all([
        secrets.read(refs.accessKeyId),
        secrets.read(refs.secretAccessKey),
        refs.sessionToken === undefined ? Promise.resolve(undefined) : secrets.read(refs.sessionToken),
      ]);
      return {
        accessKeyId,
        secretAccessKey,
        ...(sessionToken === undefined ? {} : { sessionToken }),
        // An expiration makes the SDK call this again (5 minutes before it), so rotated files are picked up.
        // On the system clock, not the injected one: it is the SDK that compares it with the time.
        expiration: new Date(Date.now() + STATIC_CREDENTIALS_TTL_MS),
      };
    };
  }

  /** The one SDK client of this provider, built at first use (keep-alive agents, bounded timeouts). */
  #getClient(): KMSClient {
    if (this.#client !== undefined) return this.#client;
    const options = this.#options;
    const agents = {
      http: new HttpAgent({ keepAlive: true, maxSockets: 50 }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: 50 }),
    };
    const region = this.region;
    const base = this.#staticCredentials();
    let credentials: CredentialProvider | undefined = base;
    if (options.roleArn !== undefined) {
      credentials = fromTemporaryCredentials({
        params: {
          RoleArn: options.roleArn,
          RoleSessionName: options.roleSessionName,
          ...(options.externalId === undefined ? {} : { ExternalId: options.externalId }),
        },
        ...(base === undefined ? {} : { masterCredentials: base }),
        clientConfig: region === undefined ? {} : { region },
      });
    }
    const config: KMSClientConfig = {
      maxAttempts: options.maxAttempts,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: options.connectTimeoutMs,
        requestTimeout: options.requestTimeoutMs,
        throwOnRequestTimeout: true,
        httpAgent: agents.http,
        httpsAgent: agents.https,
      }),
      ...(region === undefined ? {} : { region }),
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(credentials === undefined ? {} : { credentials }),
    };
    this.#agents = agents;
    this.#client = new KMSClient(config);
    return this.#client;
  }

  /**
   * One SDK call bounded by the caller: the abort signal (deadline or cancel) stops the HTTP request and
   * any retry still to come, each attempt's timeout is cut to the time left, and the caller gets its
   * answer at the deadline even if the SDK were slow to notice.
   */
  async #send<Output extends { $metadata: { attempts?: number } }>(
    operation: string,
    what: string,
    request: RequestContext,
    send: (
      client: KMSClient,
      options: { abortSignal: AbortSignal; requestTimeout: number },
    ) => Promise<Output>,
  ): Promise<Output> {
    this.#assertOpen();
    const labels = { ...this.#labels, operation };
    if (request.signal.aborted) throw abortError(request.signal, what);
    const remaining = request.deadline - this.#context.clock.now();
    if (remaining <= 0) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
        `${what}: no time left before the caller's deadline`,
      );
    }
    // AbortSignal.timeout takes whole milliseconds only (it throws on 9999.5), and the time left is often
    // fractional: a deadline split between replicated copies. Rounded up, it never fires early.
    const signal = Number.isFinite(remaining)
      ? AbortSignal.any([request.signal, AbortSignal.timeout(Math.ceil(remaining))])
      : request.signal;
    const requestTimeout = Math.max(1, Math.min(this.#options.requestTimeoutMs, Math.ceil(remaining)));
    const startedAt = this.#context.clock.now();
    const client = this.#getClient();
    try {
      const output = await raceAbort(send(client, { abortSignal: signal, requestTimeout }), signal, what);
      this.#record(labels, 'OK', startedAt, output.$metadata.attempts);
      return output;
    } catch (error) {
      const mapped = signal.aborted ? abortError(signal, what) : mapAwsError(error, what);
      const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
      this.#record(labels, outcomeOf(mapped), startedAt, attempts, awsErrorName(error));
      if (mapped.fault === 'server') this.#stale = true;
      throw mapped;
    }
  }

  #record(
    labels: { readonly provider: string; readonly operation: string },
    outcome: Outcome,
    startedAt: number,
    attempts: number | undefined,
    awsError?: string,
  ): void {
    const metrics = this.#metrics;
    metrics.requests.add({ ...labels, outcome });
    metrics.duration.observe(labels, (this.#context.clock.now() - startedAt) / 1000);
    if (attempts !== undefined && attempts > 1) metrics.retries.add(labels, attempts - 1);
    if (awsError !== undefined) metrics.errors.add({ ...labels, error: awsError });
  }

  async encrypt(plaintext: Uint8Array, request: RequestContext): Promise<EncryptResult> {
    if (plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_REQUEST_INVALID',
        `AWS KMS encrypts 1 to ${MAX_PLAINTEXT_BYTES} bytes, got ${plaintext.length}`,
      );
    }
    const what = `AWS KMS Encrypt with key ${this.#options.keyId}`;
    const output = await this.#send('Encrypt', what, request, (client, options) =>
      client.send(
        new EncryptCommand({
          KeyId: this.#options.keyId,
          Plaintext: plaintext,
          ...(this.#encryptionContext === undefined ? {} : { EncryptionContext: this.#encryptionContext }),
        }),
        options,
      ),
    );
    const blob = output.CiphertextBlob;
    const arn = output.KeyId;
    if (blob === undefined || blob.length === 0 || arn === undefined || !KEY_ARN.test(arn)) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
        `${what}: the answer lacks CiphertextBlob or the key ARN`,
      );
    }
    return { ciphertext: blob, keyId: await this.#keyIdOfEncryption(arn, request), keyRef: arn };
  }

  /**
   * The key id Encrypt reports: the one of the last DescribeKey, so Encrypt and Status agree (EncryptResponse
   * names no key material). A key the snapshot does not know (first call, or an alias now pointing at
   * another key) is described now, inside the same deadline; if that fails, the key id without material is
   * the best guess and the next health check corrects it.
   */
  async #keyIdOfEncryption(arn: string, request: RequestContext): Promise<string> {
    if (this.#snapshot?.arn !== arn) {
      this.#stale = true;
      await this.status(request);
    }
    const snapshot = this.#snapshot;
    return snapshot?.arn === arn ? snapshot.keyId : this.keyIdFor(arn);
  }

  async decrypt(input: DecryptInput, request: RequestContext): Promise<Uint8Array> {
    // The key reference is the ARN of the key that encrypted. Naming it makes AWS check the blob was made
    // by that key (IncorrectKeyException otherwise) and keeps data readable after an alias moves on.
    if (input.keyRef !== '' && !KEY_ARN.test(input.keyRef)) {
      throw new TrousseauError(
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        'the envelope names no AWS KMS key ARN: not made by the awskms provider',
      );
    }
    if (input.ciphertext.length === 0) {
      throw new TrousseauError('TROUSSEAU_ERR_CIPHERTEXT_INVALID', 'empty AWS KMS ciphertext');
    }
    const what = `AWS KMS Decrypt with key ${input.keyRef === '' ? '(from the ciphertext)' : input.keyRef}`;
    const output = await this.#send('Decrypt', what, request, (client, options) =>
      client.send(
        new DecryptCommand({
          CiphertextBlob: input.ciphertext,
          ...(input.keyRef === '' ? {} : { KeyId: input.keyRef }),
          ...(this.#encryptionContext === undefined ? {} : { EncryptionContext: this.#encryptionContext }),
        }),
        options,
      ),
    );
    if (output.Plaintext === undefined) {
      throw new TrousseauError('TROUSSEAU_ERR_PROVIDER_INTERNAL', `${what}: the answer lacks Plaintext`);
    }
    return output.Plaintext;
  }

  /**
   * DescribeKey, at most once per `statusRefreshSeconds` while all is well, at every check once something
   * failed. A key that is disabled, pending deletion, missing, or denied to us is reported with
   * `TROUSSEAU_ERR_PROVIDER_KEY_GONE`, so the front-end fails the apiserver's Status; an unreachable or
   * throttling KMS only makes the provider unhealthy, keeping the last good key id.
   */
  async status(request: RequestContext): Promise<ProviderStatus> {
    this.#assertOpen();
    const now = this.#context.clock.now();
    const snapshot = this.#snapshot;
    if (
      snapshot !== undefined &&
      !this.#stale &&
      now - snapshot.checkedAt < this.#options.statusRefreshSeconds * 1000
    ) {
      return { healthy: true, keyId: snapshot.keyId };
    }
    let metadata: KeyMetadata | undefined;
    try {
      const what = `AWS KMS DescribeKey of ${this.#options.keyId}`;
      const output = await this.#send('DescribeKey', what, request, (client, options) =>
        client.send(new DescribeKeyCommand({ KeyId: this.#options.keyId }), options),
      );
      metadata = output.KeyMetadata;
    } catch (error) {
      this.#stale = true;
      const mapped = isTrousseauError(error) ? error : mapAwsError(error, 'AWS KMS DescribeKey');
      return this.#unhealthy(mapped.message, mapped.code);
    }
    const arn = metadata?.Arn;
    if (metadata === undefined || arn === undefined || !KEY_ARN.test(arn)) {
      this.#stale = true;
      return this.#unhealthy(
        'AWS KMS DescribeKey answered without a key ARN',
        'TROUSSEAU_ERR_PROVIDER_INTERNAL',
      );
    }
    // An empty id is no id (the digest would then differ from the id-less one for nothing).
    const keyMaterialId =
      metadata.CurrentKeyMaterialId === undefined || metadata.CurrentKeyMaterialId === ''
        ? undefined
        : metadata.CurrentKeyMaterialId;
    const keyId = this.keyIdFor(arn, keyMaterialId);
    const state = metadata.KeyState ?? (metadata.Enabled === true ? 'Enabled' : 'unknown');
    if (state !== 'Enabled') {
      this.#stale = true;
      this.#metrics.keyUsable.set(this.#labels, 0);
      return {
        healthy: false,
        reason: `KMS key ${arn} is ${state}: ${state === 'PendingDeletion' ? 'cancel the deletion and enable it' : 'enable it'}, or configure another key`,
        keyId: this.#snapshot?.keyId ?? keyId,
        code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      };
    }
    if (metadata.KeyUsage !== undefined && metadata.KeyUsage !== 'ENCRYPT_DECRYPT') {
      this.#stale = true;
      this.#metrics.keyUsable.set(this.#labels, 0);
      return {
        healthy: false,
        reason: `KMS key ${arn} has key usage ${metadata.KeyUsage}; a symmetric ENCRYPT_DECRYPT key is needed`,
        code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      };
    }
    if (this.#snapshot !== undefined && this.#snapshot.checkedAt > now) {
      // Two DescribeKeys overlapped and one that began later has already answered: it is the newer
      // word on the key, so this older answer must not replace it (that could flip the key id back).
      return { healthy: true, keyId: this.#snapshot.keyId };
    }
    if (this.#snapshot !== undefined && this.#snapshot.arn !== arn) {
      this.#context.logger.info(
        { provider: this.#context.instanceName, from: this.#snapshot.arn, to: arn },
        'the configured AWS KMS key now resolves to another key: the key id changes',
      );
    } else if (this.#snapshot !== undefined && this.#snapshot.keyMaterialId !== keyMaterialId) {
      this.#context.logger.info(
        {
          provider: this.#context.instanceName,
          arn,
          fromKeyMaterial: this.#snapshot.keyMaterialId,
          toKeyMaterial: keyMaterialId,
        },
        'the AWS KMS key has new key material (rotation): the key id changes',
      );
    }
    this.#snapshot = { arn, keyMaterialId, keyId, checkedAt: now };
    this.#stale = false;
    this.#metrics.keyUsable.set(this.#labels, 1);
    return { healthy: true, keyId };
  }

  /** Unhealthy, keeping the last good key id; `code` says what failed (KEY_GONE: the key is gone). */
  #unhealthy(reason: string, code: string): ProviderStatus {
    if (code === 'TROUSSEAU_ERR_PROVIDER_KEY_GONE') this.#metrics.keyUsable.set(this.#labels, 0);
    const keyId = this.#snapshot?.keyId;
    return { healthy: false, reason, code, ...(keyId === undefined ? {} : { keyId }) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client?.destroy();
    this.#agents?.http.destroy();
    this.#agents?.https.destroy();
    this.#client = undefined;
    this.#agents = undefined;
  }
}
