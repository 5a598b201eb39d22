import { resolve } from 'node:path';
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import type {
  V1DecryptResponse,
  V1EncryptResponse,
  V1VersionResponse,
  V2DecryptResponse,
  V2EncryptResponse,
  V2StatusResponse,
} from './messages.js';
import { kmsServices } from './kms-services.js';

type UnaryMethod = (
  request: object,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (error: ServiceError | null, response: unknown) => void,
) => void;

/**
 * A client for a KMS plugin socket, dialled the way kube-apiserver dials it (`unix://`, insecure,
 * wait-for-ready, a deadline per call). The authority is `localhost`, as kube-apiserver sends from 1.32;
 * `authority: socketPath` dials the way older ones did (grpc-go sent the socket path). Used by the
 * operator CLI, tests and bench.
 */
export class KmsClient {
  readonly v2: Client;
  readonly v1beta1: Client;
  readonly #timeoutMs: number;

  constructor(socketPath: string, options: { timeoutMs?: number; authority?: string } = {}) {
    const services = kmsServices();
    const address = `unix://${resolve(socketPath)}`;
    const channelOptions = { 'grpc.default_authority': options.authority ?? 'localhost' };
    this.v2 = new services.v2(address, credentials.createInsecure(), channelOptions);
    this.v1beta1 = new services.v1beta1(address, credentials.createInsecure(), channelOptions);
    this.#timeoutMs = options.timeoutMs ?? 3_000;
  }

  #call<T>(client: Client, method: string, request: object, timeoutMs = this.#timeoutMs): Promise<T> {
    const fn = (client as unknown as Record<string, UnaryMethod>)[method];
    if (fn === undefined) return Promise.reject(new Error(`no method ${method}`));
    const metadata = new Metadata({ waitForReady: true });
    return new Promise<T>((resolve, reject) => {
      fn.call(
        client,
        request,
        metadata,
        { deadline: new Date(Date.now() + timeoutMs) },
        (error, response) => {
          if (error !== null) reject(error);
          else resolve(response as T);
        },
      );
    });
  }

  status(timeoutMs?: number): Promise<V2StatusResponse> {
    return this.#call(this.v2, 'Status', {}, timeoutMs);
  }

  encrypt(plaintext: Uint8Array, uid = '', timeoutMs?: number): Promise<V2EncryptResponse> {
    return this.#call(this.v2, 'Encrypt', { plaintext, uid }, timeoutMs);
  }

  decrypt(
    request: {
      ciphertext: Uint8Array;
      keyId: string;
      uid?: string;
      annotations?: Record<string, Uint8Array>;
    },
    timeoutMs?: number,
  ): Promise<V2DecryptResponse> {
    return this.#call(
      this.v2,
      'Decrypt',
      {
        ciphertext: request.ciphertext,
        key_id: request.keyId,
        uid: request.uid ?? '',
        annotations: request.annotations ?? {},
      },
      timeoutMs,
    );
  }

  v1Version(timeoutMs?: number): Promise<V1VersionResponse> {
    return this.#call(this.v1beta1, 'Version', { version: 'v1beta1' }, timeoutMs);
  }

  v1Encrypt(plain: Uint8Array, timeoutMs?: number): Promise<V1EncryptResponse> {
    return this.#call(this.v1beta1, 'Encrypt', { version: 'v1beta1', plain }, timeoutMs);
  }

  v1Decrypt(cipher: Uint8Array, timeoutMs?: number): Promise<V1DecryptResponse> {
    return this.#call(this.v1beta1, 'Decrypt', { version: 'v1beta1', cipher }, timeoutMs);
  }

  close(): void {
    this.v2.close();
    this.v1beta1.close();
  }
}
