/** The KMS messages as the services decode them (keepCase, bytes as Buffer, defaults filled), as @grpc/proto-loader did. */

export interface V2StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}
export interface V2EncryptRequest {
  plaintext: Buffer;
  uid: string;
}
export interface V2EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface V2DecryptRequest {
  ciphertext: Buffer;
  uid: string;
  key_id: string;
  annotations: Record<string, Buffer>;
}
export interface V2DecryptResponse {
  plaintext: Buffer;
}

export interface V1VersionRequest {
  version: string;
}
export interface V1VersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
}
export interface V1EncryptRequest {
  version: string;
  plain: Buffer;
}
export interface V1EncryptResponse {
  cipher: Buffer;
}
export interface V1DecryptRequest {
  version: string;
  cipher: Buffer;
}
export interface V1DecryptResponse {
  plain: Buffer;
}

/** A response's bytes as the Buffer its field holds, over the same memory: no view is made of a Buffer. */
export function bytesAsBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
