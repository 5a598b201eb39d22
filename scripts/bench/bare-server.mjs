#!/usr/bin/env node
// The baseline: a bare @grpc/grpc-js server for the same KMS v2 service on a unix socket, doing the same
// cryptographic work as Trousseau's local provider (AES-256-GCM with a fresh 96-bit nonce per Encrypt,
// nonce | ciphertext | tag out, the reverse on Decrypt) and nothing else: no envelope, no deadline
// handling, no metrics, no logs, no HTTP/2 rewriting. What Trousseau costs is measured against this.
// It is a typical grpc-js server: its messages come from the .proto file through @grpc/proto-loader
// (Trousseau's own codecs are part of what is measured, not of the baseline).
// Usage: node bare-server.mjs SOCKET
import { Server, status } from '@grpc/grpc-js';
import { aesGcm } from './bare-answers.mjs';
import { kmsV2Service, serveOnSocket } from './bare-kms.mjs';

const socket = process.argv[2];
const { keyId: KEY_ID, encrypt, decrypt } = aesGcm();

const server = new Server();
server.addService(kmsV2Service(), {
  Status: (_call, callback) => callback(null, { version: 'v2', healthz: 'ok', key_id: KEY_ID }),
  Encrypt: (call, callback) =>
    callback(null, { ciphertext: encrypt(call.request.plaintext), key_id: KEY_ID, annotations: {} }),
  Decrypt: (call, callback) => {
    try {
      callback(null, { plaintext: decrypt(call.request.ciphertext) });
    } catch {
      callback({ code: status.INVALID_ARGUMENT, details: 'cannot decrypt' }, null);
    }
  },
});
serveOnSocket(server, socket);
